#!/usr/bin/env bash
# The join burst (issue 10, item 5): WATCHING players watch a 2 Mbit/s H.264+AAC stream with a
# 4 s GOP while JOINERS more join within WITHIN_MS; the watchers' longest delivery gap during
# the burst and outside it, the joiners' first keyframe, the server's RSS. Not part of CI.
#
#   bench/join-burst.sh [RUNS] [SECONDS]     (defaults: 1 run, 12 s windows; the burst starts
#                                             a third into the window)
#
# Environment: WATCHING=100, JOINERS=1000, WITHIN_MS=1000, MODES="rtmp fstream" (the players'
# protocol; the publisher is RTMP for rtmp, fstream for fstream), GATHER=50 (the server's
# gather_ms), FSTREAM_HOST (the server binary, default target/release/fstream-host, with its
# plugins beside it), SKIP_BUILD=1.
#
# Every byte every player receives is checked (fstream-bench exits 2 on a corrupt stream); a
# failed run is listed at the end and the script exits 1.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-1}
SECS=${2:-12}
WATCHING=${WATCHING:-100}
JOINERS=${JOINERS:-1000}
WITHIN_MS=${WITHIN_MS:-1000}
MODES=${MODES:-"rtmp fstream"}
GATHER=${GATHER:-50}
HOST=${FSTREAM_HOST:-target/release/fstream-host}
OUT=$(pwd)/target/bench-results/join-burst-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUT"
ulimit -n 65536 || true

[ -n "${SKIP_BUILD:-}" ] || cargo build --release -p fstream-host -p auth-ini -p fstream -p rtmp \
    -p rtmp-app -p fstream-bench
BENCH=target/release/fstream-bench

# 2 Mbit/s H.264+AAC, 25 fps, a keyframe every 100 frames (4 s), 32 s long, looped by the
# publisher: a late joiner's cached GOP is up to 1 MB.
MEDIA=$OUT/stream-2mbps-gop4s.flv
ffmpeg -v error -y -f lavfi -i testsrc2=size=1280x720:rate=25 -f lavfi -i sine=frequency=440:sample_rate=44100 \
    -t 32 -c:v libx264 -preset veryfast -b:v 1900k -maxrate 1900k -bufsize 3800k -g 100 -keyint_min 100 \
    -sc_threshold 0 -c:a aac -b:a 96k -f flv "$MEDIA"

ROOT=$OUT/root
mkdir -p "$ROOT/mods" "$ROOT/users"
printf 'auth-ini\nfstream\nrtmp\nrtmp-app\n' > "$ROOT/mods/main.mods"
printf '[DEFAULT]\npassword=123\n' > "$ROOT/users/fier.ini"
# Every test client is 127.0.0.1: lift the per-address connection limit for the run.
printf '[limits]\nmax_connections_per_ip = 0\n[hub]\ngather_ms = %s\n' "$GATHER" > "$ROOT/mods/host.toml"

TABLE=$OUT/table.md
BURST=$OUT/burst.md
FAILURES=$OUT/failures.txt
: > "$FAILURES"
for run in $(seq "$RUNS"); do
    for mode in $MODES; do
        RUST_LOG=warn,fstream_host::server=info "$HOST" --root "$ROOT" \
            --listen rtmp=127.0.0.1:19370 --listen fstream=127.0.0.1:19371 2>"$OUT/host-$mode-$run.log" &
        pid=$!
        for _ in $(seq 50); do grep -q "listening protocol=rtmp" "$OUT/host-$mode-$run.log" 2>/dev/null && break; sleep 0.1; done
        rc=0
        "$BENCH" --label "join burst run$run" --server-pid "$pid" --rtmp 127.0.0.1:19370 \
            --fstream 127.0.0.1:19371 --mode "$mode" --publish "$mode" --file "$MEDIA" \
            --viewers "$WATCHING" --join-burst "$JOINERS" --burst-within-ms "$WITHIN_MS" \
            --gather-ms "$GATHER" --seconds "$SECS" --json "$OUT/burst-$mode-$run.json" \
            >"$OUT/last.txt" 2>>"$OUT/bench.err" || rc=$?
        # The load generator prints its usual table, a blank line, then the burst's table.
        [ -s "$TABLE" ] || sed -n 1,2p "$OUT/last.txt" > "$TABLE"
        [ -s "$BURST" ] || sed -n 5,6p "$OUT/last.txt" > "$BURST"
        sed -n 3p "$OUT/last.txt" | grep '^| ' >> "$TABLE" || true
        sed -n 7p "$OUT/last.txt" | grep '^| ' | tee -a "$BURST" || true
        if [ "$rc" -ne 0 ]; then
            echo "$mode run$run: fstream-bench exited $rc (2: corrupt viewers; see $OUT/bench.err)" | tee -a "$FAILURES" >&2
        fi
        kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; sleep 1
    done
done
echo
cat "$TABLE"
echo
cat "$BURST"
echo "results in $OUT"
if [ -s "$FAILURES" ]; then
    echo "failed runs:" >&2
    cat "$FAILURES" >&2
    exit 1
fi
