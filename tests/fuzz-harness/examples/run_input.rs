//! Runs inputs through a fuzz target's body, to reproduce a finding with a readable panic (and
//! a backtrace with RUST_BACKTRACE=1) outside libFuzzer. `--trace` prints what a session did
//! (rtmp_session, fstream_session: their actions; rtmp_client_session: the client's events).
//!
//! `cargo run -p fuzz-harness --example run_input -- [--trace] TARGET FILE...`

use fuzz_harness::session::{fstream, rtmp, rtmp_client};
use fuzz_harness::TARGETS;

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let trace = args.first().is_some_and(|a| a == "--trace");
    if trace {
        args.remove(0);
    }
    let Some((name, files)) = args.split_first() else {
        eprintln!("usage: run_input [--trace] TARGET FILE...");
        std::process::exit(2);
    };
    let Some((_, target)) = TARGETS.iter().find(|(n, _)| n == name) else {
        eprintln!("unknown target {name}");
        std::process::exit(2);
    };
    for f in files {
        let data = std::fs::read(f).unwrap_or_else(|e| panic!("{f}: {e}"));
        println!("{f}: {} bytes", data.len());
        // A trace prints its lines on stderr as they come.
        match (trace, name.as_str()) {
            (true, "rtmp_session") => drop(rtmp::rtmp_session_trace(&data)),
            (true, "fstream_session") => drop(fstream::fstream_session_trace(&data)),
            (true, "rtmp_client_session") => {
                for line in rtmp_client::run(&data) {
                    eprintln!("{line}");
                }
            }
            _ => target(&data),
        }
    }
}
