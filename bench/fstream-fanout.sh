#!/usr/bin/env bash
# fstream fan-out (issue 3's benchmark): one broadcaster of a raw stream at KBPS to N watchers,
# with the delay the server adds measured from stamps the broadcaster writes into the stream.
# Not part of CI.
#
#   bench/fstream-fanout.sh [SECONDS]   (NS="1 100 1000 5000", KBPS=4000, GATHER=50, CHURN="1000:50")
#
# CHURN lists churn rows, N:R (N watchers, R leaves and joins per second during the window);
# empty for none. Every watcher checks its stream (whole stamped blocks from its first byte,
# consecutive, zero padding); `corrupt` counts those that failed. A failed run stays in the
# table, is listed at the end, and makes the script exit 1.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-15}
NS=${NS:-"1 100 1000 5000"}
KBPS=${KBPS:-4000}
GATHER=${GATHER:-50}
CHURN=${CHURN-"1000:50"}
OUT=$(pwd)/target/bench-results/fanout-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUT/root/mods" "$OUT/root/users"
ulimit -n 65536 || true
cargo build --release -p fstream-host -p auth-ini -p fstream -p fstream-bench
printf 'auth-ini\nfstream\n' > "$OUT/root/mods/main.mods"
printf '[DEFAULT]\npassword=123\n' > "$OUT/root/users/fier.ini"
# Every test client is 127.0.0.1: lift the per-address limit for the run.
printf '[limits]\nmax_connections_per_ip = 0\n[hub]\ngather_ms = %s\n' "$GATHER" > "$OUT/root/mods/host.toml"
TABLE=$OUT/table.md
FAILURES=$OUT/failures.txt
: > "$FAILURES"

run() { # n label-suffix json-name [more fstream-bench options]
    local n=$1 rc=0
    RUST_LOG=warn,fstream_host::server=info target/release/fstream-host --root "$OUT/root" \
        --listen fstream=127.0.0.1:19361 2>"$OUT/host-$3.log" &
    local pid=$!
    for _ in $(seq 50); do grep -q "listening" "$OUT/host-$3.log" 2>/dev/null && break; sleep 0.1; done
    target/release/fstream-bench --label "fstream raw ${KBPS}k gather=${GATHER}ms$2" --server-pid "$pid" \
        --fstream 127.0.0.1:19361 --mode fstream --publish raw --kbps "$KBPS" --viewers "$n" \
        --seconds "$SECS" --connect-rate 1000 --json "$OUT/$3.json" "${@:4}" \
        >"$OUT/last.txt" 2>>"$OUT/bench.err" || rc=$?
    [ -s "$TABLE" ] || head -2 "$OUT/last.txt" > "$TABLE"
    tail -1 "$OUT/last.txt" | grep '^| ' | tee -a "$TABLE" || true
    if [ "$rc" -ne 0 ]; then
        echo "n=$n$2: fstream-bench exited $rc (2: corrupt watchers; see $OUT/bench.err)" | tee -a "$FAILURES" >&2
    fi
    kill "$pid"; wait "$pid" 2>/dev/null || true; sleep 1
}

for n in $NS; do
    run "$n" "" "fanout-$n"
done
for spec in $CHURN; do
    n=${spec%%:*}
    rate=${spec##*:}
    run "$n" " churn ${rate}/s" "fanout-churn-$n-$rate" --churn-per-sec "$rate"
done
echo "results in $OUT"
if [ -s "$FAILURES" ]; then
    echo "failed runs:" >&2
    cat "$FAILURES" >&2
    exit 1
fi
