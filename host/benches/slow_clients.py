#!/usr/bin/env python3
"""Slow decisions beside light ones and operators (issue 18): others' latency with S slow clients.

Starts `gavel serve` (the binary given) with `builtin:command-rules`, then for each S in the
list: S processes send a 60 KB `"eval " * 12000 + "ls"` tool call back to back (a slow decision
through the stock policy), while one light client sends `ls` decisions and one operator sends
`list` on the management socket, each on its own connection, one request at a time with a short
pause. Prints, per S, the light decisions' and the management calls' p50 and p99 (ms), and how
long one slow decision takes alone.

Run: python3 host/benches/slow_clients.py BIN [--slow 0,2,8] [--n 400] [--json FILE]
(use a release build: `cargo build --release --bin gavel`). Loopback Unix sockets only.
"""

import argparse
import json
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

SLOW = {"action": "tool.call", "tool": "run_command", "arg": "eval " * 12000 + "ls",
        "session_id": "slow", "sandbox_id": "sbx_1"}
LIGHT = {"action": "tool.call", "tool": "run_command", "arg": "ls -la", "session_id": "light",
         "sandbox_id": "sbx_1"}
LIST = {"action": "local.exec.list"}

CONFIG = """socket = "{d}/exec.sock"
management_socket = "{d}/manage.sock"
[store]
kind = "memory"
[[policy]]
name = "rules"
builtin = "command-rules"
config = {{ global = {{ allow = ["run_command(ls *)", "run_command(ls)"], deny = ["run_command(eval *)"] }} }}
limits = {{ deadline_ms = 2000 }}
"""


def connect(path):
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    return s, s.makefile("rb")


def ask(conn, line):
    s, r = conn
    s.sendall(line)
    answer = r.readline()
    if not answer:
        raise RuntimeError("connection closed without an answer")
    return answer


def slow_sender(path, stop):
    conn = connect(path)
    line = (json.dumps(SLOW) + "\n").encode()
    while not stop.is_set():
        ask(conn, line)


def timed(path, request, n, pause):
    conn = connect(path)
    line = (json.dumps(request) + "\n").encode()
    out = []
    for _ in range(n):
        t = time.perf_counter()
        ask(conn, line)
        out.append((time.perf_counter() - t) * 1e3)
        time.sleep(pause)
    return out


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(len(v) * p))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bin")
    ap.add_argument("--slow", default="0,2,8")
    ap.add_argument("--n", type=int, default=400)
    ap.add_argument("--json")
    args = ap.parse_args()
    d = tempfile.mkdtemp()
    with open(f"{d}/gavel.toml", "w") as f:
        f.write(CONFIG.format(d=d))
    server = subprocess.Popen([args.bin, "serve", "--config", f"{d}/gavel.toml"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        server.stdout.readline()
        exec_sock, manage_sock = f"{d}/exec.sock", f"{d}/manage.sock"
        for _ in range(100):
            if os.path.exists(manage_sock):
                break
            time.sleep(0.05)
        conn = connect(exec_sock)
        line = (json.dumps(SLOW) + "\n").encode()
        alone = []
        for _ in range(5):
            t = time.perf_counter()
            ask(conn, line)
            alone.append((time.perf_counter() - t) * 1e3)
        alone_ms = statistics.median(alone)
        print(f"one slow decision alone: median {alone_ms:.1f} ms (of 5); cpus {os.cpu_count()}")
        rows = []
        for slow in [int(x) for x in args.slow.split(",")]:
            stop = multiprocessing.Event()
            procs = [multiprocessing.Process(target=slow_sender, args=(exec_sock, stop))
                     for _ in range(slow)]
            for p in procs:
                p.start()
            time.sleep(0.5)
            light = timed(exec_sock, LIGHT, args.n, 0.002)
            manage = timed(manage_sock, LIST, args.n // 4, 0.002)
            stop.set()
            for p in procs:
                p.join(timeout=10)
                if p.is_alive():
                    p.terminate()
            row = {"slow_clients": slow,
                   "light_p50_ms": pct(light, 0.5), "light_p99_ms": pct(light, 0.99),
                   "manage_p50_ms": pct(manage, 0.5), "manage_p99_ms": pct(manage, 0.99),
                   "light_n": len(light), "manage_n": len(manage)}
            rows.append(row)
            print(f"{slow} slow clients: light decision p50 {row['light_p50_ms']:.2f} ms, "
                  f"p99 {row['light_p99_ms']:.2f} ms; management list p50 "
                  f"{row['manage_p50_ms']:.2f} ms, p99 {row['manage_p99_ms']:.2f} ms")
            time.sleep(0.3)
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"slow_alone_ms": alone_ms, "rows": rows}, f, indent=2)
    finally:
        server.terminate()
        server.wait(timeout=20)


if __name__ == "__main__":
    sys.exit(main())
