#!/usr/bin/env bash
# Runs the cargo-fuzz targets on the stable toolchain.
#
#   fuzz/run.sh TARGET [SECONDS]     one target (default 60 s)
#   fuzz/run.sh all [SECONDS]        every target, one after the other
#   fuzz/run.sh list                 the target names
#
# cargo-fuzz needs unstable rustc flags (-Zsanitizer=address, sancov); RUSTC_BOOTSTRAP=1 lets the
# stable compiler accept them, and stable rust-std ships the ASan runtime. Install cargo-fuzz
# with `cargo install cargo-fuzz --locked`. Debug assertions (overflow checks) are on.
#
# Each target starts from fuzz/seeds/TARGET and fuzz/regressions/TARGET (copied into
# fuzz/corpus/TARGET, which is not committed). A crash leaves its input in
# fuzz/artifacts/TARGET/; after fixing the bug, copy it to fuzz/regressions/TARGET/ with a name
# that says what it was, so `cargo test -p fuzz-harness` replays it from then on.
# Environment: FUZZ_TOOLCHAIN (default stable), FUZZ_JOBS (fuzzing processes: cargo fuzz's
# --jobs, libFuzzer's -fork), FUZZ_ARGS (extra libFuzzer flags, e.g. "-max_len=8192"); limit the
# build's parallelism with CARGO_BUILD_JOBS.
set -euo pipefail
cd "$(dirname "$0")"

TARGETS=(fstream_preamble rtmp_handshake rtmp_chunk amf0 amf3 flv_tag rtmp_session rtmp_client_session fstream_session http_session control_api ts_mux fmp4_mux
    mods_file host_toml)

usage() {
    sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
}

[ $# -ge 1 ] || usage
what=$1
secs=${2:-60}
case "$what" in
    list) printf '%s\n' "${TARGETS[@]}"; exit 0 ;;
    all) selected=("${TARGETS[@]}") ;;
    *)
        printf '%s\n' "${TARGETS[@]}" | grep -qx -- "$what" || { echo "unknown target: $what" >&2; usage; }
        selected=("$what")
        ;;
esac

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz is not installed: cargo install cargo-fuzz --locked" >&2
    exit 1
fi

export RUSTC_BOOTSTRAP=1
toolchain=()
if command -v rustup >/dev/null 2>&1; then
    toolchain=("+${FUZZ_TOOLCHAIN:-stable}")
fi
jobs=()
if [ -n "${FUZZ_JOBS:-}" ]; then
    jobs=(--jobs "$FUZZ_JOBS")
fi

status=0
summary=()
for t in "${selected[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t"
    for src in "seeds/$t" "regressions/$t"; do
        [ -d "$src" ] || continue
        find "$src" -maxdepth 1 -type f ! -name README.md -exec cp -n {} "corpus/$t/" \;
    done
    features=(--no-default-features)
    case "$t" in mods_file | host_toml) features=() ;; esac
    log="artifacts/$t/last-run.log"
    echo "== $t: ${secs}s (log: fuzz/$log)"
    set +e
    # shellcheck disable=SC2086
    cargo "${toolchain[@]}" fuzz run "${jobs[@]}" "${features[@]}" --debug-assertions "$t" "corpus/$t" -- \
        -max_total_time="$secs" -print_final_stats=1 ${FUZZ_ARGS:-} 2>&1 | tee "$log" |
        grep --line-buffered -E '^(#[0-9]+[[:space:]]+(INITED|DONE|pulse)|==[0-9]+==|SUMMARY|thread|Failed|error)'
    codes=("${PIPESTATUS[@]}")
    set -e
    rc=${codes[0]}
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    if [ "$rc" -ne 0 ]; then
        status=1
        crash=$(grep -aoE 'artifacts/[^ ]*/(crash|leak|timeout|oom|slow-unit)-[0-9a-f]+' "$log" | tail -1 || true)
        summary+=("$t: FAILED (exit $rc) after ${execs:-?} executions; input: fuzz/${crash:-artifacts/$t}")
    else
        summary+=("$t: ok, ${execs:-?} executions in ${secs}s, corpus $(find "corpus/$t" -type f | wc -l) inputs")
    fi
done

echo
printf '%s\n' "${summary[@]}"
exit $status
