//! App and stream names from `connect`, `publish` and `play`, and their query strings.
//!
//! `rtmp://host/APP/NAME?query` reaches us as `connect{app: "APP"}` and `publish("NAME?query")`;
//! the stream is `APP/NAME` (`../../shared/spec/streams.md`). Both parts must be valid name
//! parts (`fstream_abi::names`); the query carries credentials and options and is not part of
//! the name.

use fstream_abi::names::{validate_part, NameError};

/// A name with its query string split off (`cam?user_password=1` → `cam`, `user_password=1`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameArg {
    pub name: String,
    /// Undecoded, without the `?`.
    pub query: String,
}

/// Splits `name?query` and checks the name part.
pub fn parse_name(arg: &str) -> Result<NameArg, NameError> {
    let (name, query) = arg.split_once('?').unwrap_or((arg, ""));
    validate_part(name)?;
    Ok(NameArg {
        name: name.to_string(),
        query: query.to_string(),
    })
}

/// The app of a `connect` command object: a trailing `/` is dropped (some clients add one) and
/// a query string is split off (`app?token=x`, kept for credentials).
pub fn parse_app(app: &str) -> Result<NameArg, NameError> {
    let (app, query) = app.split_once('?').unwrap_or((app, ""));
    parse_name(app.strip_suffix('/').unwrap_or(app)).map(|n| NameArg {
        name: n.name,
        query: query.to_string(),
    })
}

/// Joins the stream name's query and the app's query; the first occurrence of a key wins, so
/// the stream name's values come first.
pub fn join_queries(first: &str, second: &str) -> String {
    match (first.is_empty(), second.is_empty()) {
        (_, true) => first.to_string(),
        (true, false) => second.to_string(),
        (false, false) => format!("{first}&{second}"),
    }
}

/// The first value of `key` in a query string, percent-decoded (`+` stays a plus: RTMP clients
/// do not form-encode). `None` if absent or not valid UTF-8 once decoded.
pub fn query_param(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k)? == key).then(|| percent_decode(v))?
    })
}

/// Decodes `%XX` escapes; a `%` not followed by two hex digits stays as it is.
pub fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let hex = |j: usize| bytes.get(j).and_then(|c| (*c as char).to_digit(16));
        match (b, hex(i + 1), hex(i + 2)) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// The stream a redirect names: `APP/NAME`, or `NAME` in `app`.
pub fn redirect_target(app: &str, target: &str) -> Result<String, NameError> {
    let full = if target.contains('/') {
        target.to_string()
    } else {
        format!("{app}/{target}")
    };
    fstream_abi::names::split_stream(&full)?;
    Ok(full)
}

/// The reason given to the client for a verdict this build does not know (from an app
/// handler built against a newer interface): it counts as a rejection.
pub const UNKNOWN_VERDICT: &str = "The application gave an answer this server does not understand.";

/// The stream an app handler's verdict on `name` in `app` leads to, or why there is none
/// (a rejection's reason, or a bad redirect), for publish and play alike. `None` is a verdict
/// this build does not know.
pub fn decided_stream(
    app: &str,
    name: &str,
    verdict: Option<&fstream_abi::AppVerdict>,
) -> Result<String, String> {
    match verdict {
        Some(fstream_abi::AppVerdict::Accept) => Ok(format!("{app}/{name}")),
        Some(fstream_abi::AppVerdict::Redirect(to)) => {
            redirect_target(app, to).map_err(|e| format!("Bad redirect {to:?}: {e}."))
        }
        Some(fstream_abi::AppVerdict::Reject(why)) => Err(why.to_string()),
        _ => Err(UNKNOWN_VERDICT.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_names_and_queries() {
        assert_eq!(
            parse_name("cam?user_password=123&x=y").unwrap(),
            NameArg {
                name: "cam".into(),
                query: "user_password=123&x=y".into()
            }
        );
        assert_eq!(parse_name("cam").unwrap().query, "");
        assert!(parse_name("a/b").is_err());
        assert!(parse_name("..").is_err());
        assert!(parse_name("").is_err());
        assert!(parse_name("?x=1").is_err());
        assert_eq!(parse_app("fier/").unwrap().name, "fier");
        assert_eq!(parse_app("fier?token=t").unwrap().query, "token=t");
        assert!(parse_app("fier/cam").is_err());
    }

    #[test]
    fn reads_percent_decoded_parameters() {
        let q = "user_password=a%26b%3D&token=&channel_password=p+q&user%5Fpassword=no";
        assert_eq!(query_param(q, "user_password").as_deref(), Some("a&b="));
        assert_eq!(query_param(q, "token").as_deref(), Some(""));
        assert_eq!(query_param(q, "channel_password").as_deref(), Some("p+q"));
        assert_eq!(query_param(q, "missing"), None);
        assert_eq!(query_param("", "x"), None);
        assert_eq!(percent_decode("100%").as_deref(), Some("100%"));
        assert_eq!(percent_decode("%zz%4").as_deref(), Some("%zz%4"));
        assert_eq!(percent_decode("%ff"), None);
        assert_eq!(
            query_param(&join_queries("a=1", "a=2&b=3"), "a").as_deref(),
            Some("1")
        );
        assert_eq!(join_queries("", "b=3"), "b=3");
        assert_eq!(join_queries("a=1", ""), "a=1");
    }

    #[test]
    fn resolves_redirects() {
        assert_eq!(redirect_target("fier", "cam2").unwrap(), "fier/cam2");
        assert_eq!(redirect_target("fier", "vod/film").unwrap(), "vod/film");
        assert!(redirect_target("fier", "../x").is_err());
        assert!(redirect_target("fier", "a/b/c").is_err());
    }
}
