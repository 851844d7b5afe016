#!/usr/bin/env bash
# RTMP fan-out against the host's worker threads and flusher shards: for each worker count W
# (worker_threads) and each player count N, the server's CPU per GB delivered, stalled and
# corrupt players, and the time each flusher shard spent writing (from the host's shutdown log).
#
#   bench/workers.sh [SECONDS]        (default 15 s windows)
#
# Environment: WORKERS="1 2" (worker_threads values), SHARDS (flush_shards; default: = W),
# NS="500 1000 2000 3000" (players), BENCH_THREADS (the load generator's threads, default 2),
# FSTREAM_HOST, SKIP_BUILD=1. On a bigger machine run it as it is, e.g.
#   WORKERS="1 2 4 8 16" NS="2000 5000 10000 20000" BENCH_THREADS=8 bench/workers.sh
# Raw JSON and logs in target/bench-results/workers-DATE/. Not part of CI.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-15}
WORKERS=${WORKERS:-"1 2"}
NS=${NS:-"500 1000 2000 3000"}
OUT=$(pwd)/target/bench-results/workers-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUT"
ulimit -n 65536 || true
[ -n "${SKIP_BUILD:-}" ] || cargo build --release --workspace
HOST=${FSTREAM_HOST:-target/release/fstream-host}
. bench/lib.sh
MEDIA=$OUT/stream-2mbps.flv
make_media "$MEDIA"
ROOT=$OUT/root
bench_root "$ROOT" auth-ini rtmp rtmp-app
ROWS=$OUT/rows.md
: > "$ROWS"
for W in $WORKERS; do
    S=${SHARDS:-$W}
    for N in $NS; do
        {
            printf 'worker_threads = %s\n' "$W"
            printf '[limits]\nmax_connections_per_ip = 0\n[hub]\nflush_shards = %s\n' "$S"
        } > "$ROOT/mods/host.toml"
        LOG=$OUT/host-w$W-n$N.log
        RUST_LOG=warn,fstream_host=info "$HOST" --root "$ROOT" --listen rtmp=127.0.0.1:19380 2>"$LOG" &
        PID=$!
        for _ in $(seq 50); do grep -q "listening protocol=rtmp" "$LOG" 2>/dev/null && break; sleep 0.1; done
        CPU0=$(awk '{print $14+$15}' /proc/$PID/stat)
        target/release/fstream-bench --mode rtmp --publish rtmp --file "$MEDIA" --rtmp 127.0.0.1:19380 \
            --viewers "$N" --seconds "$SECS" --threads "${BENCH_THREADS:-2}" --server-pid "$PID" \
            --label "w$W-n$N" --json "$OUT/w$W-n$N.json" >/dev/null || true
        CPU1=$(awk '{print $14+$15}' /proc/$PID/stat)
        kill -TERM "$PID"; wait "$PID" 2>/dev/null || true
        python3 - "$OUT/w$W-n$N.json" "$LOG" "$W" "$S" "$CPU0" "$CPU1" "$(getconf CLK_TCK)" <<'PY' | tee -a "$ROWS"
import json, re, sys
r = json.load(open(sys.argv[1]))
log = open(sys.argv[2]).read()
m = re.search(r"busy_ms=\[([0-9, ]*)\]", log)
busy = [int(x) for x in m.group(1).split(",") if x.strip()] if m else []
total_cpu = (int(sys.argv[6]) - int(sys.argv[5])) / int(sys.argv[7])
share = f"{100 * max(busy) / sum(busy):.0f}%" if busy and sum(busy) else "-"
f = lambda v, d=2: "-" if v is None else f"{v:.{d}f}"
print(f"| {sys.argv[3]} | {sys.argv[4]} | {r['viewers']} | {r['connected']} | {f(r['delivered_mbps'],0)} | "
      f"{r['stalled']} | {r['corrupt']} | {f(r['server_cpu_s'])} | {f(r['server_cpu_s_per_gb'])} | "
      f"{' / '.join(f'{b/1000:.2f}' for b in busy)} | {share} | {total_cpu:.1f} | {f(r['bench_cpu_s'])} |")
PY
    done
done
echo "| workers | shards | players | connected | Mbit/s | stalled | corrupt | server CPU s (window) | CPU-s/GB | flusher busy s per shard (whole run) | busiest shard's share | server CPU s (whole run) | bench CPU s |"
