#!/usr/bin/env bash
# fstream fan-out (issue 3's benchmark): one broadcaster of a raw stream at KBPS to N watchers,
# with the delay the server adds measured from stamps the broadcaster writes into the stream.
# Not part of CI.
#
#   bench/fstream-fanout.sh [SECONDS]      (NS="1 100 1000 5000", KBPS=4000, GATHER=50)
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-15}
NS=${NS:-"1 100 1000 5000"}
KBPS=${KBPS:-4000}
GATHER=${GATHER:-50}
OUT=$(pwd)/target/bench-results/fanout-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUT/root/mods" "$OUT/root/users"
cargo build --release -p fstream-host -p auth-ini -p fstream -p fstream-bench
printf 'auth-ini\nfstream\n' > "$OUT/root/mods/main.mods"
printf '[DEFAULT]\npassword=123\n' > "$OUT/root/users/fier.ini"
# Every test client is 127.0.0.1: lift the per-address limit for the run.
printf '[limits]\nmax_connections_per_ip = 0\n[hub]\ngather_ms = %s\n' "$GATHER" > "$OUT/root/mods/host.toml"
TABLE=$OUT/table.md
echo "| label | mode | viewers | connected | Mbit/s delivered | per viewer min/med/max | stalled | first key p50/p99 ms | delay p50/p99 ms | server CPU s | CPU-s/GB | peak RSS MB | RSS KiB/viewer | bench CPU s |" > "$TABLE"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|" >> "$TABLE"
for n in $NS; do
    RUST_LOG=warn,fstream_host::server=info target/release/fstream-host --root "$OUT/root" \
        --listen fstream=127.0.0.1:19361 2>"$OUT/host-$n.log" &
    PID=$!
    for _ in $(seq 50); do grep -q "listening" "$OUT/host-$n.log" 2>/dev/null && break; sleep 0.1; done
    target/release/fstream-bench --label "fstream raw ${KBPS}k gather=${GATHER}ms" --server-pid "$PID" \
        --fstream 127.0.0.1:19361 --mode fstream --publish raw --kbps "$KBPS" --viewers "$n" \
        --seconds "$SECS" --connect-rate 1000 --json "$OUT/fanout-$n.json" 2>>"$OUT/bench.err" | tail -1 | tee -a "$TABLE"
    kill "$PID"; wait "$PID" 2>/dev/null || true; sleep 1
done
echo "results in $OUT"
