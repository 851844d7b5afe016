//! Which stream a request target names. Paths are percent-decoded once and then checked part by
//! part with the host's name rules, so `..`, an encoded `/` (`%2F`) or a NUL never reach a
//! stream name (or, later, a file name).

use crate::error::HttpError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `GET /APP/STREAM.flv`: the live stream `APP/STREAM` as HTTP-FLV.
    Flv {
        stream: String,
        channel_password: Option<String>,
    },
    /// `GET /APP/STREAM/index.m3u8`: the stream's HLS playlist.
    Playlist {
        stream: String,
        /// A blocking reload: wait for segment `msn` (and its part `part`).
        msn: Option<u64>,
        part: Option<usize>,
    },
    /// `GET /APP/STREAM/NAME.ts` (or `.m4s`, `.mp4`): a segment, part or init segment.
    Segment { stream: String, name: String },
    /// `GET /`: the live streams.
    Index,
    /// `GET /APP/STREAM`: the page that plays it.
    Watch { stream: String },
    /// `GET /_player/NAME`: a vendored player.
    Asset(&'static crate::pages::Asset),
    /// `GET /_report?...`: a watch page saying what it plays.
    Report { query: String },
}

/// Routes `target` (origin form). Malformed or traversing paths are 400; well-formed paths that
/// name nothing are 404.
pub fn route(target: &str) -> Result<Route, HttpError> {
    let (_, query) = target.split_once('?').unwrap_or((target, ""));
    let parts = check_path(target)?;
    match parts.as_slice() {
        [root] if root.is_empty() => Ok(Route::Index),
        [report] if report == "_report" => Ok(Route::Report {
            query: query.to_string(),
        }),
        [dir, file] if dir == "_player" => crate::pages::asset(file)
            .map(Route::Asset)
            .ok_or(HttpError::NotFound),
        [app, file] if !file.contains('.') => {
            for part in [app.as_str(), file.as_str()] {
                fstream_abi::names::validate_part(part).map_err(|_| HttpError::NotFound)?;
            }
            Ok(Route::Watch {
                stream: format!("{app}/{file}"),
            })
        }
        [app, file] => {
            let Some(name) = file.strip_suffix(".flv") else {
                return Err(HttpError::NotFound);
            };
            for part in [app.as_str(), name] {
                fstream_abi::names::validate_part(part).map_err(|_| HttpError::NotFound)?;
            }
            Ok(Route::Flv {
                stream: format!("{app}/{name}"),
                channel_password: query_param(query, "channel_password"),
            })
        }
        [app, name, file] => {
            for part in [app.as_str(), name.as_str(), file.as_str()] {
                fstream_abi::names::validate_part(part).map_err(|_| HttpError::NotFound)?;
            }
            let stream = format!("{app}/{name}");
            if file == "index.m3u8" {
                let num = |k| query_param(query, k).and_then(|v| v.parse().ok());
                Ok(Route::Playlist {
                    stream,
                    msn: num("_HLS_msn"),
                    part: num("_HLS_part").map(|p: u64| p as usize),
                })
            } else if [".ts", ".m4s", ".mp4"].iter().any(|e| file.ends_with(e)) {
                Ok(Route::Segment {
                    stream,
                    name: file.clone(),
                })
            } else {
                Err(HttpError::NotFound)
            }
        }
        _ => Err(HttpError::NotFound),
    }
}

/// The percent-decoded parts of `target`'s path, refusing what is not an origin-form path or
/// leaves its directory (`.`, `..`, an encoded `/` or `\\`, a NUL), in any encoding.
pub fn check_path(target: &str) -> Result<Vec<String>, HttpError> {
    let path = target.split_once('?').map_or(target, |(p, _)| p);
    let Some(rest) = path.strip_prefix('/') else {
        return Err(HttpError::BadRequest("the target must be a path".into()));
    };
    let mut parts = Vec::new();
    for raw in rest.split('/') {
        let part = percent_decode(raw)
            .ok_or_else(|| HttpError::BadRequest("bad percent-encoding in the path".into()))?;
        if part == "." || part == ".." || part.contains(['/', '\\', '\0']) {
            return Err(HttpError::BadRequest(
                "the path leaves its directory".into(),
            ));
        }
        parts.push(part);
    }
    Ok(parts)
}

/// The value of `key` in a query string (`a=b&c=d`), percent-decoded (`+` is a space).
pub fn query_param(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == key).then(|| percent_decode(&v.replace('+', " ")))?
    })
}

/// Decodes `%XX` escapes; `None` for a broken escape or bytes that are not UTF-8.
pub fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flv_paths_and_their_refusals() {
        assert_eq!(
            route("/fier/cam.flv?channel_password=a%20b").unwrap(),
            Route::Flv {
                stream: "fier/cam".into(),
                channel_password: Some("a b".into())
            }
        );
        assert_eq!(
            route("/fier/cam.flv").unwrap(),
            Route::Flv {
                stream: "fier/cam".into(),
                channel_password: None
            }
        );
        for traversal in [
            "/../etc/passwd.flv",
            "/fier/..",
            "/fier/%2e%2e",
            "/%2E%2E/cam.flv",
            "/fier%2Fcam.flv/x",
            "/fier/a%00.flv",
            "/fier/%zz.flv",
            "/fier/a%5cb.flv",
        ] {
            assert!(
                matches!(route(traversal), Err(HttpError::BadRequest(_))),
                "{traversal}"
            );
        }
        assert_eq!(route("/").unwrap(), Route::Index);
        assert!(matches!(
            route("/_player/hls-1.6.15.min.js"),
            Ok(Route::Asset(_))
        ));
        assert_eq!(
            route("/fier/cam").unwrap(),
            Route::Watch {
                stream: "fier/cam".into()
            }
        );
        assert_eq!(
            route("/fier/cam/index.m3u8").unwrap(),
            Route::Playlist {
                stream: "fier/cam".into(),
                msn: None,
                part: None
            }
        );
        assert_eq!(
            route("/fier/cam/17-3.ts").unwrap(),
            Route::Segment {
                stream: "fier/cam".into(),
                name: "17-3.ts".into()
            }
        );
        for missing in [
            "/a/b/c.mp3",
            "/a/b/c/d",
            "/_player/nosuch.js",
            "/fier",
            "/fier/cam.mp4",
            "/a/b/c.flv",
            "/fier/.x.flv",
        ] {
            assert_eq!(route(missing), Err(HttpError::NotFound), "{missing}");
        }
        assert!(matches!(
            route("http://x/fier/cam.flv"),
            Err(HttpError::BadRequest(_))
        ));
    }
}
