#!/usr/bin/env bash
# Recorded-stream (VOD) players of one file: N RTMP players of a 2 Mbit/s FLV, each paced by the
# server. Reports, per N, the server's CPU and RSS growth per player and the players' lead (media
# time over wall time, at least, after 2 s): every player paced means no lead below 0.
#
#   bench/vod.sh [SECONDS]         (default 20 s windows)
#
# Environment: NS="100 500 1000" (players), FSTREAM_HOST, SKIP_BUILD=1, WORKERS, SHARDS,
# READ_THREADS (source_read_threads), KBPS (video bitrate of the file, default 1900).
# Raw JSON in target/bench-results/vod-DATE/. Not part of CI.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-20}
NS=${NS:-"100 500 1000"}
OUT=$(pwd)/target/bench-results/vod-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUT"
ulimit -n 65536 || true
[ -n "${SKIP_BUILD:-}" ] || cargo build --release --workspace
HOST=${FSTREAM_HOST:-target/release/fstream-host}
. bench/lib.sh
ROOT=$OUT/root
bench_root "$ROOT" auth-ini rtmp rtmp-app vod
mkdir -p "$ROOT/media"
KBPS=${KBPS:-1900}
# Long enough for the connect phase, the warm-up and the window.
make_media "$ROOT/media/clip.flv" $((SECS + 30)) "$KBPS"
{
    printf 'worker_threads = %s\n' "${WORKERS:-0}"
    printf '[limits]\nmax_connections_per_ip = 0\nsource_read_threads = %s\n' "${READ_THREADS:-4}"
    printf '[hub]\nflush_shards = %s\n' "${SHARDS:-0}"
} > "$ROOT/mods/host.toml"
for N in $NS; do
    RUST_LOG=warn "$HOST" --root "$ROOT" --listen rtmp=127.0.0.1:19370 2>"$OUT/host-$N.log" &
    SERVER_PID=$!
    for _ in $(seq 50); do ss -ltn | grep -q ':19370 ' && break; sleep 0.1; done
    target/release/fstream-bench --mode rtmp --publish none --rtmp 127.0.0.1:19370 --app vod \
        --stream clip --kbps $((KBPS + 96)) --viewers "$N" --seconds "$SECS" \
        --server-pid "$SERVER_PID" --label "vod-$N" --json "$OUT/vod-$N.json" >/dev/null || true
    kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
    python3 - "$OUT/vod-$N.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
f = lambda v, d=2: "-" if v is None else f"{v:.{d}f}"
print(f"| {r['viewers']} | {r['connected']} | {f(r['delivered_mbps'],0)} | {r['stalled']} | {r['corrupt']} | "
      f"{f(r['lead_ms_min'],0)} / {f(r['lead_ms_median_of_min'],0)} | {r['behind']} | {f(r['server_cpu_s'])} | "
      f"{f(r['server_cpu_s_per_gb'])} | {f(r['server_peak_rss_mb'],0)} | {f(r['server_rss_growth_kib_per_viewer'],1)} | "
      f"{f(r['bench_cpu_s'])} | {len(r['errors'])} |")
PY
done
echo "players | connected | Mbit/s | stalled | corrupt | lead min / median ms | behind | server CPU s | CPU-s/GB | peak RSS MB | RSS KiB/player | bench CPU s | errors"
