#!/usr/bin/env bash
# HTTP-FLV fan-out against RTMP on the same host and stream: N viewers of each, alternating,
# every byte checked. The server's CPU per GB delivered is the figure to compare.
#
#   bench/http-flv.sh [SECONDS]       (default 15 s windows)
#
# Environment: NS="500 1000 2000", RUNS=1, FSTREAM_HOST, SKIP_BUILD=1. Not part of CI.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-15}
NS=${NS:-"500 1000 2000"}
RUNS=${RUNS:-1}
OUT=$(pwd)/target/bench-results/http-flv-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUT"
[ -n "${SKIP_BUILD:-}" ] || cargo build --release --workspace
HOST=${FSTREAM_HOST:-target/release/fstream-host}
. bench/lib.sh
MEDIA=$OUT/stream-2mbps.flv
make_media "$MEDIA"
ROOT=$OUT/root
bench_root "$ROOT" auth-ini rtmp rtmp-app http
printf '[limits]\nmax_connections_per_ip = 0\n' > "$ROOT/mods/host.toml"
echo "| run | viewers | mode | connected | Mbit/s | stalled | corrupt | server CPU s | CPU-s/GB | peak RSS MB | bench CPU s |"
for run in $(seq "$RUNS"); do
    for N in $NS; do
        for MODE in rtmp http-flv; do
            RUST_LOG=warn "$HOST" --root "$ROOT" --listen rtmp=127.0.0.1:19385 --listen http=127.0.0.1:19386 \
                2>"$OUT/host-$MODE-$N-$run.log" &
            PID=$!
            for _ in $(seq 50); do ss -ltn | grep -q ':19386 ' && break; sleep 0.1; done
            target/release/fstream-bench --mode "$MODE" --publish rtmp --file "$MEDIA" --rtmp 127.0.0.1:19385 \
                --http 127.0.0.1:19386 --viewers "$N" --seconds "$SECS" --server-pid "$PID" \
                --json "$OUT/$MODE-$N-$run.json" >/dev/null || true
            kill "$PID"; wait "$PID" 2>/dev/null || true
            python3 - "$OUT/$MODE-$N-$run.json" "$run" "$MODE" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
f = lambda v, d=2: "-" if v is None else f"{v:.{d}f}"
print(f"| {sys.argv[2]} | {r['viewers']} | {sys.argv[3]} | {r['connected']} | {f(r['delivered_mbps'],0)} | {r['stalled']} | "
      f"{r['corrupt']} | {f(r['server_cpu_s'])} | {f(r['server_cpu_s_per_gb'])} | {f(r['server_peak_rss_mb'],0)} | {f(r['bench_cpu_s'])} |")
PY
        done
    done
done
