#!/usr/bin/env bash
# HLS origin cost per stream: N streams published (ffmpeg, stream copy of a 2 Mbit/s file) for
# S seconds with HLS on (hls_part_ms 400 and 0) and off; the server's CPU and RSS. The
# difference is what segmenting costs, with no viewer.
#
#   bench/hls-origin.sh [N] [SECONDS]      (defaults: 10 streams, 20 s)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-10}
SECS=${2:-20}
OUT=$(pwd)/target/bench-results/hls-origin-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUT"
[ -n "${SKIP_BUILD:-}" ] || cargo build --release --workspace
HOST=${FSTREAM_HOST:-target/release/fstream-host}
. bench/lib.sh
make_media "$OUT/media.flv" 30
ROOT=$OUT/root
bench_root "$ROOT" auth-ini rtmp rtmp-app http
echo "| HLS | streams | server CPU s in ${SECS} s | share of a core per stream | RSS MB with the streams | RSS MB idle |"
for MODE in off plain ll; do
    case $MODE in
        off) printf 'hls = false\n' ;;
        plain) printf 'hls = true\nhls_part_ms = 0\n' ;;
        ll) printf 'hls = true\nhls_part_ms = 400\n' ;;
    esac > "$ROOT/mods/http.toml"
    RUST_LOG=warn "$HOST" --root "$ROOT" --listen rtmp=127.0.0.1:19390 --listen http=127.0.0.1:19391 2>"$OUT/host-$MODE.log" &
    PID=$!
    sleep 1
    IDLE=$(awk '/VmRSS/{print $2}' /proc/$PID/status)
    PUBS=()
    for i in $(seq "$N"); do
        ffmpeg -v error -re -stream_loop -1 -i "$OUT/media.flv" -c copy -f flv \
            "rtmp://127.0.0.1:19390/fier/s$i?user_password=123" &
        PUBS+=($!)
    done
    sleep 5
    CPU0=$(awk '{print $14+$15}' /proc/$PID/stat)
    sleep "$SECS"
    CPU1=$(awk '{print $14+$15}' /proc/$PID/stat)
    RSS=$(awk '/VmRSS/{print $2}' /proc/$PID/status)
    kill "${PUBS[@]}" 2>/dev/null || true
    wait "${PUBS[@]}" 2>/dev/null || true
    kill "$PID"; wait "$PID" 2>/dev/null || true
    python3 -c "
t=($CPU1-$CPU0)/$(getconf CLK_TCK); n=$N; s=$SECS
print(f'| $MODE | {n} | {t:.2f} | {100*t/s/n:.2f}% | {$RSS/1024:.1f} | {$IDLE/1024:.1f} |')"
done
