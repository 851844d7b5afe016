//! A tiny glob matcher for stream names, shared by plugins (flv-recorder's `record` patterns,
//! the relay's `streams`): `*` matches any run of characters within one part of
//! `APP/STREAM` (never the `/`), `?` matches exactly one character (never the `/`), anything
//! else matches itself.

/// Checks a pattern when settings are read: it must look like `APP/STREAM` (one `/`) and use only
/// name characters and the wildcards, so a pattern that could never match is an error at init
/// rather than a recording that silently never happens.
pub fn check_pattern(pattern: &str) -> Result<(), String> {
    if pattern.matches('/').count() != 1 {
        return Err(format!(
            "pattern {pattern:?} must have the form APP/STREAM (e.g. \"fier/*\" or \"*/*\")"
        ));
    }
    if let Some(c) = pattern
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '*' | '?' | '/')))
    {
        return Err(format!(
            "pattern {pattern:?}: character {c:?} can never match a stream name"
        ));
    }
    Ok(())
}

/// Whether `name` matches `pattern`.
///
/// Linear-time two-pointer matching with a single backtrack point per `*`-free stretch; because
/// `*` stops at `/`, the parts before and after the `/` are matched separately.
pub fn matches(pattern: &str, name: &str) -> bool {
    let mut p_parts = pattern.split('/');
    let mut n_parts = name.split('/');
    loop {
        match (p_parts.next(), n_parts.next()) {
            (None, None) => return true,
            (Some(p), Some(n)) => {
                if !match_part(p.as_bytes(), n.as_bytes()) {
                    return false;
                }
            }
            _ => return false,
        }
    }
}

fn match_part(p: &[u8], n: &[u8]) -> bool {
    let (mut pi, mut ni) = (0usize, 0usize);
    // Where the last `*` was and which name position it is currently standing for.
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        match p.get(pi) {
            Some(b'*') => {
                star = Some((pi, ni));
                pi += 1;
            }
            Some(&c) if c == b'?' || Some(&c) == n.get(ni) => {
                pi += 1;
                ni += 1;
            }
            _ => match star {
                // Let the last `*` swallow one more character and retry after it.
                Some((sp, sn)) => {
                    pi = sp + 1;
                    ni = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    p.get(pi..)
        .is_some_and(|rest| rest.iter().all(|&c| c == b'*'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_and_wildcards() {
        assert!(matches("fier/cam", "fier/cam"));
        assert!(!matches("fier/cam", "fier/cam2"));
        assert!(!matches("fier/cam", "fier/ca"));
        assert!(matches("fier/*", "fier/cam"));
        assert!(matches("fier/*", "fier/x"));
        assert!(!matches("fier/*", "ann/cam"));
        assert!(matches("*/*", "ann/cam"));
        assert!(matches("*/cam", "ann/cam"));
        assert!(matches("f?er/c?m", "fier/cam"));
        assert!(!matches("f?er/cam", "fer/cam"));
        assert!(matches("*/cam-*", "a/cam-1"));
        assert!(matches("*/cam-*", "a/cam-"));
        assert!(!matches("*/cam-*", "a/cam"));
        assert!(matches("*/*a*b*", "x/zzazzbzz"));
        assert!(matches("*/a*b", "x/aXbYb"));
        assert!(!matches("*/a*b", "x/aXbYc"));
        assert!(matches("*/**?", "x/y"));
        assert!(!matches("*/?", "x/"));
        assert!(matches("*/*", "x/"));
    }

    #[test]
    fn star_never_crosses_the_slash() {
        assert!(!matches("*", "fier/cam"));
        assert!(!matches("fier*", "fier/cam"));
        assert!(!matches("*/*", "fier"));
        assert!(!matches("*/*", "a/b/c"));
        assert!(!matches("f?ier/cam", "f/ier/cam"));
    }

    #[test]
    fn pattern_checks() {
        assert!(check_pattern("fier/*").is_ok());
        assert!(check_pattern("*/*").is_ok());
        assert!(check_pattern("a-b.c_d/?x").is_ok());
        assert!(check_pattern("*").is_err());
        assert!(check_pattern("a/b/c").is_err());
        assert!(check_pattern("fier/[ab]").is_err());
        assert!(check_pattern("fier/ cam").is_err());
    }

    #[test]
    fn long_inputs_stay_fast() {
        let name = format!("{}/{}", "a".repeat(128), "a".repeat(128));
        let pat = format!("{}/{}b", "*a".repeat(60), "*a".repeat(60));
        let t = std::time::Instant::now();
        assert!(!matches(&pat, &name));
        assert!(t.elapsed() < std::time::Duration::from_millis(100));
    }
}
