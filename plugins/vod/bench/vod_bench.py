#!/usr/bin/env python3
"""Benchmark of the vod plugin: N concurrent players of one FLV file.

Starts fstream-host (release build by default) on a temporary root with auth-ini, fstream,
rtmp, rtmp-app and vod, generates a test file with ffmpeg, then starts N players at once:

  --mode fstream   raw fstream watchers (`watch,user=vod,channel=NAME`) read by this script
  --mode rtmp      rtmpdump processes (`rtmpdump -r rtmp://.../vod/NAME -o -`) read by this script

and reports:
  * the server's CPU (user+system seconds from /proc/PID/stat, and as % of one core over the run),
  * its peak RSS (VmHWM from /proc/PID/status) and its RSS before the players came,
  * pacing: every player's stream is parsed as FLV as it arrives; its "lead" is the timestamp of
    the last complete tag minus the wall time since its first byte. A player fed at the file's
    own rate keeps a constant lead equal to the host's read-ahead (the player's buffer length,
    capped at 5 s); a lead that falls means the player got less than real time (a stall).
    Reported: how long each player took (first to last byte) against the file's duration, its
    bytes against the file's size, and min / max lead over all players and samples.

Usage: python3 plugins/vod/bench/vod_bench.py [--players 100] [--mode fstream|rtmp]
       [--seconds 30] [--profile release|debug] [--markdown]
"""

import argparse
import os
import re
import selectors
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    fields = stat[stat.rfind(")") + 2:].split()
    hz = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / hz


def status_kib(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return None


def flv_tag_times(path):
    """(offset after each tag, its timestamp) of an FLV file, and its last timestamp."""
    with open(path, "rb") as f:
        data = f.read()
    pos = struct.unpack(">I", data[5:9])[0] + 4
    last = 0
    while pos + 11 <= len(data):
        size = int.from_bytes(data[pos + 1:pos + 4], "big")
        ts = int.from_bytes(data[pos + 4:pos + 7], "big") | (data[pos + 7] << 24)
        last = max(last, ts)
        pos += 11 + size + 4
    return last, len(data)


class Player:
    """One player's byte stream, parsed as FLV incrementally."""

    def __init__(self, name):
        self.name = name
        self.buf = bytearray()
        self.header_done = False
        self.bytes = 0
        self.first = None
        self.last = None
        self.last_ts = None
        self.leads = []
        self.done = False

    def feed(self, data, now):
        if not data:
            return
        if self.first is None:
            self.first = now
        self.last = now
        self.bytes += len(data)
        self.buf += data
        if not self.header_done:
            if len(self.buf) < 13:
                return
            off = struct.unpack(">I", self.buf[5:9])[0] + 4
            if len(self.buf) < off:
                return
            del self.buf[:off]
            self.header_done = True
        pos = 0
        while len(self.buf) - pos >= 11:
            size = int.from_bytes(self.buf[pos + 1:pos + 4], "big")
            if len(self.buf) - pos < 11 + size + 4:
                break
            ts = int.from_bytes(self.buf[pos + 4:pos + 7], "big") | (self.buf[pos + 7] << 24)
            self.last_ts = ts if self.last_ts is None else max(self.last_ts, ts)
            pos += 11 + size + 4
        del self.buf[:pos]

    def sample(self, now):
        if self.first is not None and self.last_ts is not None and not self.done:
            self.leads.append((now - self.first, self.last_ts / 1000.0 - (now - self.first)))


def start_host(root, profile):
    target = os.path.join(REPO, "target", profile)
    host = subprocess.Popen(
        [os.path.join(target, "fstream-host"), "--root", root,
         "--listen", "fstream=127.0.0.1:0", "--listen", "rtmp=127.0.0.1:0"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        env={**os.environ, "RUST_LOG": "warn,fstream_host::server=info"},
    )
    addrs = {}
    deadline = time.time() + 20
    while len(addrs) < 2 and time.time() < deadline:
        line = host.stderr.readline().decode(errors="replace")
        if not line:
            break
        m = re.search(r"listening protocol=(\w+) plugin=\S+ addr=([\d.:]+)", line)
        if m:
            addrs[m.group(1)] = m.group(2)
    if len(addrs) < 2:
        host.kill()
        sys.exit(f"host did not start (addresses found: {addrs})")
    # Keep draining its log so it never blocks on a full pipe.
    os.set_blocking(host.stderr.fileno(), False)
    return host, addrs


def fstream_watch(addr, action):
    h, p = addr.rsplit(":", 1)
    s = socket.create_connection((h, int(p)))
    a = action.encode()
    s.sendall(b"\n\n" + struct.pack(">I", len(a)) + b"\0" + a)
    s.setblocking(False)
    return s


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--players", type=int, default=100)
    ap.add_argument("--mode", choices=["fstream", "rtmp"], default="fstream")
    ap.add_argument("--seconds", type=int, default=30, help="length of the generated file")
    ap.add_argument("--size", default="640x360")
    ap.add_argument("--vbitrate", default="1000k")
    ap.add_argument("--profile", default="release")
    ap.add_argument("--markdown", action="store_true", help="print a table row")
    args = ap.parse_args()

    root = tempfile.mkdtemp(prefix="vod-bench-")
    try:
        os.makedirs(os.path.join(root, "mods"))
        os.makedirs(os.path.join(root, "media"))
        with open(os.path.join(root, "mods", "main.mods"), "w") as f:
            f.write("auth-ini\nfstream\nrtmp\nrtmp-app\nvod\n")
        clip = os.path.join(root, "media", "clip.flv")
        subprocess.run(
            ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=size={args.size}:rate=25",
             "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100", "-t", str(args.seconds),
             "-c:v", "libx264", "-preset", "veryfast", "-b:v", args.vbitrate, "-pix_fmt", "yuv420p",
             "-g", "50", "-c:a", "aac", "-b:a", "128k", "-f", "flv", clip],
            check=True)
        duration_ms, size = flv_tag_times(clip)
        duration = duration_ms / 1000.0
        kbps = size * 8 / duration / 1000

        host, addrs = start_host(root, args.profile)
        pid = host.pid
        time.sleep(0.5)
        rss_before = status_kib(pid, "VmRSS")
        cpu0 = cpu_seconds(pid)
        t0 = time.monotonic()

        sel = selectors.DefaultSelector()
        players = []
        procs = []
        for i in range(args.players):
            p = Player(i)
            players.append(p)
            if args.mode == "fstream":
                s = fstream_watch(addrs["fstream"], "watch,user=vod,channel=clip")
                sel.register(s, selectors.EVENT_READ, (p, s))
            else:
                pr = subprocess.Popen(
                    ["rtmpdump", "-q", "-r", f"rtmp://{addrs['rtmp']}/vod/clip", "-o", "-"],
                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
                procs.append(pr)
                os.set_blocking(pr.stdout.fileno(), False)
                sel.register(pr.stdout.fileno(), selectors.EVENT_READ, (p, pr.stdout.fileno()))
        connected = time.monotonic() - t0

        open_count = args.players
        next_sample = time.monotonic() + 0.1
        deadline = time.monotonic() + duration + 30
        while open_count > 0 and time.monotonic() < deadline:
            for key, _ in sel.select(timeout=0.05):
                p, src = key.data
                try:
                    data = src.recv(1 << 16) if isinstance(src, socket.socket) else os.read(src, 1 << 16)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    data = b""
                now = time.monotonic()
                if data:
                    p.feed(data, now)
                else:
                    p.done = True
                    sel.unregister(src)
                    if isinstance(src, socket.socket):
                        src.close()
                    open_count -= 1
            now = time.monotonic()
            if now >= next_sample:
                for p in players:
                    p.sample(now)
                next_sample = now + 0.1
            try:
                host.stderr.read()
            except (BlockingIOError, TypeError):
                pass
        wall = time.monotonic() - t0
        cpu = cpu_seconds(pid) - cpu0
        hwm = status_kib(pid, "VmHWM")
        host.terminate()
        host.wait(timeout=10)
        for pr in procs:
            pr.kill()
            pr.wait()

        finished = [p for p in players if p.done and p.first is not None]
        spans = sorted(p.last - p.first for p in finished)
        got = sorted(p.bytes for p in players)
        leads = [l for p in players for _, l in p.leads]
        final_lead = sorted(p.leads[-1][1] for p in players if p.leads)
        # After the first second (the start burst).
        steady = sorted(l for p in players for t, l in p.leads if t >= 1.0)
        worst = min(((l, t) for p in players for t, l in p.leads), default=(0, 0))
        res = {
            "mode": args.mode,
            "players": args.players,
            "file": f"{args.size}, {duration:.1f} s, {size / 1e6:.2f} MB, {kbps:.0f} kbit/s",
            "connect_s": connected,
            "finished": len(finished),
            "server_cpu_s": cpu,
            "server_cpu_pct": 100 * cpu / wall,
            "rss_before_mb": (rss_before or 0) / 1024,
            "peak_rss_mb": (hwm or 0) / 1024,
            "span_min": spans[0] if spans else 0,
            "span_med": statistics.median(spans) if spans else 0,
            "span_max": spans[-1] if spans else 0,
            "bytes_min": got[0],
            "bytes_max": got[-1],
            "lead_min": min(leads) if leads else 0,
            "lead_max": max(leads) if leads else 0,
            "steady_lead_min": min(steady) if steady else 0,
            "steady_lead_max": max(steady) if steady else 0,
            "steady_lead_p01": steady[len(steady) // 100] if steady else 0,
            "steady_lead_p50": steady[len(steady) // 2] if steady else 0,
            "worst_lead_at_s": worst[1],
            "final_lead_med": statistics.median(final_lead) if final_lead else 0,
            "delivered_mbps": sum(got) * 8 / wall / 1e6,
            "wall_s": wall,
            "duration_s": duration,
            "file_bytes": size,
        }
        for k, v in res.items():
            print(f"{k:>18}: {v:.3f}" if isinstance(v, float) else f"{k:>18}: {v}")
        if args.markdown:
            print(
                f"| {res['mode']} | {res['players']} | {res['finished']} | {res['server_cpu_s']:.2f} "
                f"({res['server_cpu_pct']:.1f}% of a core) | {res['rss_before_mb']:.1f} → {res['peak_rss_mb']:.1f} "
                f"| {res['span_min']:.2f} / {res['span_med']:.2f} / {res['span_max']:.2f} "
                f"| {res['steady_lead_min']:.2f} / {res['steady_lead_p01']:.2f} / {res['steady_lead_p50']:.2f} / {res['steady_lead_max']:.2f} "
                f"| {res['delivered_mbps']:.1f} |")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
