#!/usr/bin/env bash
# The idle host's CPU: N fstream watchers of a stream nobody publishes, for S seconds.
#
#   bench/idle.sh [N] [SECONDS]          (defaults: 100 watchers, 20 s)
#
# Prints the server's CPU seconds over the window and the share of one core. Not part of CI.
# Environment: FSTREAM_HOST (default target/release/fstream-host), SKIP_BUILD=1, WORKERS, SHARDS.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100}
SECS=${2:-20}
[ -n "${SKIP_BUILD:-}" ] || cargo build --release --workspace
HOST=${FSTREAM_HOST:-target/release/fstream-host}
OUT=$(mktemp -d)
trap 'kill $SERVER_PID 2>/dev/null || true; rm -rf "$OUT"' EXIT
mkdir -p "$OUT/mods" "$OUT/users"
printf 'auth-ini\nfstream\nrtmp\nrtmp-app\n' > "$OUT/mods/main.mods"
printf '[DEFAULT]\npassword=123\n' > "$OUT/users/fier.ini"
{
    printf 'worker_threads = %s\n' "${WORKERS:-0}"
    printf '[limits]\nmax_connections_per_ip = 0\n[hub]\nflush_shards = %s\n' "${SHARDS:-0}"
} > "$OUT/mods/host.toml"
RUST_LOG=warn,fstream_host::server=info "$HOST" --root "$OUT" \
    --listen rtmp=127.0.0.1:0 --listen fstream=127.0.0.1:19361 2>"$OUT/host.log" &
SERVER_PID=$!
for _ in $(seq 50); do grep -q "listening protocol=fstream" "$OUT/host.log" 2>/dev/null && break; sleep 0.1; done
target/release/fstream-bench --mode fstream --publish none --viewers "$N" --seconds "$SECS" \
    --fstream 127.0.0.1:19361 --server-pid "$SERVER_PID" --json "$OUT/idle.json" >/dev/null
python3 - "$OUT/idle.json" "$SECS" "$N" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); secs = float(sys.argv[2])
cpu = r.get("server_cpu_s") or 0.0
print(f"{sys.argv[3]} idle watchers ({r['connected']} connected), {secs:.0f} s: server CPU {cpu:.3f} s = {100*cpu/secs:.3f}% of a core")
PY
