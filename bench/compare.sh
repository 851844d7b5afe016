#!/usr/bin/env bash
# Side-by-side fan-out benchmark: nginx with the RTMP module against fstream-host, same box,
# same stream, same load generator, alternating, several runs. Not part of CI.
#
#   bench/compare.sh [RUNS] [SECONDS]        (defaults: 2 runs, 20 s windows)
#
# Writes a dated section into BENCHMARKS.md and the raw JSON under target/bench-results/.
# Environment: NS="1 100 500 1000 2000" (RTMP players), FSTREAM_NS (fstream watchers, default NS; empty for none),
# GATHER="0 20 50 100" (gathering windows to sweep at N=1000; empty for none), CHURN="1000:50" (churn rows:
# N viewers, R leaves and joins per second; empty for none), SKIP_NGINX=1, FSTREAM_HOST (the
# server binary, default target/release/fstream-host, with its plugins beside it: e.g. a build of
# a clean snapshot), SKIP_BUILD=1, NO_APPEND=1 (leave BENCHMARKS.md alone).
#
# Every viewer validates every byte it receives; the `corrupt` column counts those whose stream
# did not parse. A run with corrupt viewers (or any other failure of the load generator) is kept
# in the table, noted in target/bench-results/.../failures.txt, and makes this script exit 1 at
# the end; nothing is written to BENCHMARKS.md then.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-2}
SECS=${2:-20}
NS=${NS:-"1 100 500 1000 2000"}
FSTREAM_NS=${FSTREAM_NS-$NS}
GATHER=${GATHER-"0 20 50 100"}
CHURN=${CHURN-"1000:50"}
OUT=$(pwd)/target/bench-results/$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUT"
ulimit -n 65536 || true

need() { command -v "$1" >/dev/null 2>&1; }
if ! need ffmpeg || { [ -z "${SKIP_NGINX:-}" ] && [ ! -e /usr/lib/nginx/modules/ngx_rtmp_module.so ]; }; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg nginx libnginx-mod-rtmp >/dev/null
fi
[ -n "${SKIP_BUILD:-}" ] || cargo build --release --workspace
HOST=${FSTREAM_HOST:-target/release/fstream-host}

# A 2 Mbit/s H.264+AAC FLV with a keyframe every 2 s, 30 s long, looped by the publisher.
MEDIA=$OUT/stream-2mbps.flv
ffmpeg -v error -y -f lavfi -i testsrc2=size=1280x720:rate=25 -f lavfi -i sine=frequency=440:sample_rate=44100 \
    -t 30 -c:v libx264 -preset veryfast -b:v 1900k -maxrate 1900k -bufsize 3800k -g 50 -keyint_min 50 \
    -sc_threshold 0 -c:a aac -b:a 96k -f flv "$MEDIA"

BENCH=target/release/fstream-bench
ROOT=$OUT/root
mkdir -p "$ROOT/mods" "$ROOT/users"
printf 'auth-ini\nfstream\nrtmp\nrtmp-app\n' > "$ROOT/mods/main.mods"
printf '[DEFAULT]\npassword=123\n' > "$ROOT/users/fier.ini"

start_fstream_host() { # $1 = gather_ms
    # Every test client is 127.0.0.1: lift the per-address connection limit for the run.
    printf '[limits]\nmax_connections_per_ip = 0\n[hub]\ngather_ms = %s\n' "$1" > "$ROOT/mods/host.toml"
    RUST_LOG=warn,fstream_host::server=info "$HOST" --root "$ROOT" \
        --listen rtmp=127.0.0.1:19350 --listen fstream=127.0.0.1:19351 2>"$OUT/host.log" &
    SERVER_PID=$!
    for _ in $(seq 50); do grep -q "listening protocol=rtmp" "$OUT/host.log" 2>/dev/null && return; sleep 0.1; done
    echo "fstream-host did not start:"; cat "$OUT/host.log"; exit 1
}

start_nginx() {
    mkdir -p "$OUT/nginx"
    cat > "$OUT/nginx/nginx.conf" <<CONF
load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
worker_processes 1;
daemon off;
pid $OUT/nginx/nginx.pid;
error_log $OUT/nginx/error.log warn;
events { worker_connections 65536; }
rtmp {
    server {
        listen 127.0.0.1:19352;
        chunk_size 4096;
        application fier { live on; }
    }
}
CONF
    nginx -c "$OUT/nginx/nginx.conf" -p "$OUT/nginx" &
    NGINX_MASTER=$!
    sleep 1
    # The worker serves the connections: measure it.
    SERVER_PID=$(pgrep -P "$NGINX_MASTER" | head -1)
}

stop_server() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; sleep 1; }

TABLE=$OUT/table.md
FAILURES=$OUT/failures.txt
: > "$FAILURES"
run_bench() { # label server-pid rtmp-addr mode publish n json [more fstream-bench options]
    local rc=0
    "$BENCH" --label "$1" --server-pid "$2" --rtmp "$3" --fstream 127.0.0.1:19351 --mode "$4" \
        --publish "$5" --file "$MEDIA" --viewers "$6" --seconds "$SECS" --json "$7" "${@:8}" \
        >"$OUT/last.txt" 2>>"$OUT/bench.err" || rc=$?
    # The table's header comes from the load generator itself.
    [ -s "$TABLE" ] || head -2 "$OUT/last.txt" > "$TABLE"
    tail -1 "$OUT/last.txt" | grep '^| ' | tee -a "$TABLE" || true
    if [ "$rc" -ne 0 ]; then
        echo "$1 (n=$6 ${*:8}): fstream-bench exited $rc (2: corrupt viewers; see $OUT/bench.err)" | tee -a "$FAILURES" >&2
    fi
}

for run in $(seq "$RUNS"); do
    for n in $NS; do
        if [ -z "${SKIP_NGINX:-}" ]; then
            start_nginx
            run_bench "nginx-rtmp run$run" "$SERVER_PID" 127.0.0.1:19352 rtmp rtmp "$n" "$OUT/nginx-$n-$run.json"
            stop_server "$NGINX_MASTER"
        fi
        start_fstream_host 50
        run_bench "fstream-host run$run" "$SERVER_PID" 127.0.0.1:19350 rtmp rtmp "$n" "$OUT/fh-rtmp-$n-$run.json"
        stop_server "$SERVER_PID"
    done
    for n in $FSTREAM_NS; do
        start_fstream_host 50
        run_bench "fstream-host fstream run$run" "$SERVER_PID" 127.0.0.1:19350 fstream fstream "$n" "$OUT/fh-fstream-$n-$run.json"
        stop_server "$SERVER_PID"
    done
done
for g in $GATHER; do
    start_fstream_host "$g"
    run_bench "fstream-host gather=${g}ms" "$SERVER_PID" 127.0.0.1:19350 rtmp rtmp 1000 "$OUT/fh-gather-$g.json"
    stop_server "$SERVER_PID"
done
# Churn: during the window R viewers per second leave and as many join afresh.
for spec in $CHURN; do
    n=${spec%%:*}
    rate=${spec##*:}
    if [ -z "${SKIP_NGINX:-}" ]; then
        start_nginx
        run_bench "nginx-rtmp churn ${rate}/s" "$SERVER_PID" 127.0.0.1:19352 rtmp rtmp "$n" "$OUT/nginx-churn-$n-$rate.json" --churn-per-sec "$rate"
        stop_server "$NGINX_MASTER"
    fi
    start_fstream_host 50
    run_bench "fstream-host churn ${rate}/s" "$SERVER_PID" 127.0.0.1:19350 rtmp rtmp "$n" "$OUT/fh-churn-$n-$rate.json" --churn-per-sec "$rate"
    stop_server "$SERVER_PID"
    start_fstream_host 50
    run_bench "fstream-host fstream churn ${rate}/s" "$SERVER_PID" 127.0.0.1:19350 fstream fstream "$n" "$OUT/fh-fstream-churn-$n-$rate.json" --churn-per-sec "$rate"
    stop_server "$SERVER_PID"
done

if [ -s "$FAILURES" ]; then
    echo "Not written to BENCHMARKS.md: some runs failed ($FAILURES):" >&2
    cat "$FAILURES" >&2
    echo "table so far: $TABLE" >&2
    exit 1
fi

if [ -n "${NO_APPEND:-}" ]; then
    cat "$TABLE"
    echo "results in $OUT"
    exit 0
fi
{
    echo
    echo "## Side by side, $(date -u +%Y-%m-%d) (bench/compare.sh)"
    echo
    echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $(nginx -v 2>&1 | tr -d '\n'), libnginx-mod-rtmp $(dpkg-query -W -f='${Version}' libnginx-mod-rtmp 2>/dev/null || echo '?'); fstream-host $(git rev-parse --short HEAD)."
    echo "Stream: 2 Mbit/s H.264+AAC FLV, keyframe every 2 s; ${SECS} s windows; $RUNS runs; fstream-host with gather_ms = 50 unless the label says otherwise."
    echo
    cat "$TABLE"
} >> BENCHMARKS.md
echo "results in $OUT and BENCHMARKS.md"
