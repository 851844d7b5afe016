//! Destination URLs as logs, errors and stats may show them: every query value and any user
//! part replaced by `***` (a push destination's query is where its credentials go:
//! `?key=...`, `?user_password=...`), and on request the stream name as well (a literal
//! stream name in the settings is often a platform's stream key).

/// What stands for a hidden value.
pub const HIDDEN: &str = "***";

/// `url` without its credentials: the user part and every query value hidden.
pub fn url(url: &str) -> String {
    redact(url, false)
}

/// As [`url`], and the stream name (everything after the app) hidden too.
pub fn url_hiding_name(url: &str) -> String {
    redact(url, true)
}

fn redact(url: &str, hide_name: bool) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        // Not a URL: nothing says which part is secret.
        return HIDDEN.to_string();
    };
    let (authority, path_query) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let mut out = String::with_capacity(url.len());
    out.push_str(scheme);
    out.push_str("://");
    match authority.rsplit_once('@') {
        Some((_, host)) => {
            out.push_str(HIDDEN);
            out.push('@');
            out.push_str(host);
        }
        None => out.push_str(authority),
    }
    let (path, query) = match path_query.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path_query, None),
    };
    if hide_name {
        // "/APP/NAME...": keep "/APP/".
        let app_end = path
            .get(1..)
            .and_then(|p| p.find('/'))
            .map(|i| i + 2)
            .unwrap_or(path.len());
        out.push_str(path.get(..app_end).unwrap_or(path));
        if app_end < path.len() {
            out.push_str(HIDDEN);
        }
    } else {
        out.push_str(path);
    }
    if let Some(q) = query {
        out.push('?');
        let items: Vec<String> = q
            .split('&')
            .map(|item| match item.split_once('=') {
                Some((k, _)) => format!("{k}={HIDDEN}"),
                None if item.is_empty() => String::new(),
                None => HIDDEN.to_string(),
            })
            .collect();
        out.push_str(&items.join("&"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_and_user_parts_are_hidden() {
        assert_eq!(
            url("rtmp://b.example/live/fier-cam?key=SECRET&x=1"),
            "rtmp://b.example/live/fier-cam?key=***&x=***"
        );
        assert_eq!(
            url("rtmps://u:pw@h:443/a/b?token"),
            "rtmps://***@h:443/a/b?***"
        );
        assert_eq!(url("rtmp://h/a/b"), "rtmp://h/a/b");
        assert_eq!(url("SECRET"), "***");
        assert_eq!(
            url_hiding_name("rtmp://a.rtmp.youtube.com/live2/abcd-efgh?x=1"),
            "rtmp://a.rtmp.youtube.com/live2/***?x=***"
        );
        assert_eq!(url_hiding_name("rtmp://h/app"), "rtmp://h/app");
    }
}
