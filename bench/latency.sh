#!/usr/bin/env bash
# Publish-to-display latency in headless Chromium: LL-HLS, plain HLS and HTTP-FLV, one run
# each, printed as "latency: MODE: median ..." (tests/e2e/tests/latency.rs says how each is
# read off the watch page's reports).
#
#   bench/latency.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --workspace
cargo nextest run -p fstream-e2e --test latency --run-ignored only --no-capture 2>&1 | grep "latency:"
