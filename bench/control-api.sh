#!/usr/bin/env bash
# The control API under load: N RTMP players of one 2 Mbit/s stream, with and without a
# client polling the API as the dashboard does (streams and sessions every second) plus
# /metrics every second. Per run: the server's CPU per GB delivered, stalled and corrupt
# players (fstream-bench checks every byte), and each API answer's time and size.
#
#   bench/control-api.sh [SECONDS]      (default 15 s windows)
#
# Environment: NS="500 2000" (players), BENCH_THREADS (default 2), FSTREAM_HOST, SKIP_BUILD=1.
# Raw JSON and logs in target/bench-results/control-api-DATE/. Not part of CI.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-15}
NS=${NS:-"500 2000"}
OUT=$(pwd)/target/bench-results/control-api-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUT"
ulimit -n 65536 || true
[ -n "${SKIP_BUILD:-}" ] || cargo build --release --workspace
HOST=${FSTREAM_HOST:-target/release/fstream-host}
. bench/lib.sh
MEDIA=$OUT/stream-2mbps.flv
make_media "$MEDIA"
ROOT=$OUT/root
bench_root "$ROOT" auth-ini rtmp rtmp-app http control-api
printf '[limits]\nmax_connections_per_ip = 0\n' > "$ROOT/mods/host.toml"
API=127.0.0.1:19997
ROWS=$OUT/rows.md
: > "$ROWS"

# poll FILE: until killed, every second, the dashboard's two calls and a scrape; one line per
# answer: path, seconds, bytes.
poll() {
    while true; do
        for p in /api/v1/streams /api/v1/sessions /metrics; do
            curl -s -o /dev/null -w "$p %{time_total} %{size_download}\n" "http://$API$p" >> "$1" || true
        done
        sleep 1
    done
}

for N in $NS; do
    for POLL in no yes; do
        LOG=$OUT/host-n$N-$POLL.log
        RUST_LOG=warn "$HOST" --root "$ROOT" --listen rtmp=127.0.0.1:19380 \
            --listen http=127.0.0.1:19080 --listen api=$API 2>"$LOG" &
        PID=$!
        for _ in $(seq 50); do curl -s -o /dev/null "http://$API/api/v1" && break; sleep 0.1; done
        TIMES=$OUT/api-n$N-$POLL.txt
        : > "$TIMES"
        POLLER=
        if [ "$POLL" = yes ]; then
            poll "$TIMES" &
            POLLER=$!
        fi
        target/release/fstream-bench --mode rtmp --publish rtmp --file "$MEDIA" --rtmp 127.0.0.1:19380 \
            --viewers "$N" --seconds "$SECS" --threads "${BENCH_THREADS:-2}" --server-pid "$PID" \
            --label "n$N-$POLL" --json "$OUT/n$N-$POLL.json" >/dev/null || true
        [ -z "$POLLER" ] || kill "$POLLER" 2>/dev/null || true
        kill -TERM "$PID"; wait "$PID" 2>/dev/null || true
        python3 - "$OUT/n$N-$POLL.json" "$TIMES" "$POLL" <<'PY' | tee -a "$ROWS"
import json, sys, collections
r = json.load(open(sys.argv[1]))
by = collections.defaultdict(list)
for line in open(sys.argv[2]):
    p, t, n = line.split()
    by[p].append((float(t) * 1000, int(n)))
def col(p):
    v = sorted(by.get(p, []))
    if not v:
        return "-"
    med = v[len(v) // 2]
    return f"{med[0]:.1f} ms / {max(x[0] for x in v):.1f} ms / {med[1] / 1024:.1f} KiB"
f = lambda v, d=2: "-" if v is None else f"{v:.{d}f}"
print(f"| {r['viewers']} | {sys.argv[3]} | {r['connected']} | {f(r['delivered_mbps'],0)} | {r['stalled']} | "
      f"{r['corrupt']} | {f(r['server_cpu_s_per_gb'])} | {col('/api/v1/streams')} | "
      f"{col('/api/v1/sessions')} | {col('/metrics')} |")
PY
    done
done
echo "| players | polled | connected | Mbit/s | stalled | corrupt | server CPU-s/GB | streams: median / max / size | sessions: median / max / size | metrics: median / max / size |"
