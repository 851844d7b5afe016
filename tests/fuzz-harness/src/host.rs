//! `mods_file` and `host_toml`: the host's own configuration parsers.

use fstream_host::config::HostConfig;
use fstream_host::mods;

/// `mods/main.mods`: every name returned is a valid, unique name part, and the names written
/// back one per line parse to the same list.
pub fn mods_file(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(names) = mods::parse(text, "fuzz.mods") else {
        return;
    };
    for (i, n) in names.iter().enumerate() {
        assert!(
            fstream_host::mods::parse(n, "one").is_ok(),
            "name {n:?} does not parse alone"
        );
        assert!(!names[..i].contains(n), "duplicate {n:?}");
        assert!(!n.is_empty() && !n.contains(char::is_whitespace) && !n.contains('#'));
    }
    let written = names.join("\n");
    assert_eq!(
        mods::parse(&written, "again").ok().as_ref(),
        Some(&names),
        "names written back parse differently"
    );
}

/// `mods/host.toml`: never panics; an accepted file keeps its values through a re-read of its
/// own text.
pub fn host_toml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(cfg) = toml::from_str::<HostConfig>(text) else {
        return;
    };
    let again = toml::from_str::<HostConfig>(text)
        .unwrap_or_else(|e| panic!("the same text parsed once and failed once: {e}"));
    assert_eq!(format!("{cfg:?}"), format!("{again:?}"));
}
