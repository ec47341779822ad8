#!/usr/bin/env python3
"""Metrics scrapes beside decisions with many live tokens (issue 18, item 11).

Starts `gavel serve` (the binary given) on a SQLite store with pending bounds raised, mints
TOKENS pending tokens (`builtin:default-action` asking), then measures:
- how long one `GET /metrics` takes;
- a fresh request's latency (a new connection, one `local.exec` that asks) with 0 and with 4
  scrapers looping on `/metrics`: p50 and p99 over N requests.

Run: python3 host/benches/scrape.py BIN [--tokens 20000] [--n 300] [--json FILE]
(use a release build). Loopback and Unix sockets only.
"""

import argparse
import json
import multiprocessing
import os
import socket
import subprocess
import tempfile
import time

CONFIG = """socket = "{d}/exec.sock"
management_socket = "{d}/manage.sock"
metrics_addr = "127.0.0.1:{port}"
{bounds}[store]
kind = "sqlite"
path = "{d}/store"
[[policy]]
name = "ask"
builtin = "default-action"
config = {{ action = "pending_hitl" }}
"""


def exec_line(i, session):
    return (json.dumps({"action": "local.exec", "executable": "make", "args": [f"t{i}"],
                        "sandbox_id": "sbx_1", "session_id": session, "profile": "p",
                        "hitl_mode": "async_token"}) + "\n").encode()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def scrape(port):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    body = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        body += chunk
    s.close()
    if b" 200 " not in body.split(b"\r\n", 1)[0]:
        raise RuntimeError(body[:200])
    return body


def scrape_loop(port, stop):
    while not stop.is_set():
        scrape(port)


def fresh_request(path, i):
    t = time.perf_counter()
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    s.sendall(exec_line(i, "fresh"))
    r = s.makefile("rb").readline()
    s.close()
    if b"decision" not in r:
        raise RuntimeError(r)
    return (time.perf_counter() - t) * 1e3


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(len(v) * p))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bin")
    ap.add_argument("--tokens", type=int, default=20000)
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--json")
    ap.add_argument("--no-bounds", action="store_true",
                    help="for a build before the pending bounds existed (it rejects the keys)")
    args = ap.parse_args()
    d = tempfile.mkdtemp()
    os.chmod(d, 0o700)
    port = free_port()
    with open(f"{d}/gavel.toml", "w") as f:
        bounds = "" if args.no_bounds else "max_pending = 1000000\nmax_pending_per_session = 1000000\n"
        f.write(CONFIG.format(d=d, port=port, bounds=bounds))
    server = subprocess.Popen([args.bin, "serve", "--config", f"{d}/gavel.toml"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        server.stdout.readline()
        sock = f"{d}/exec.sock"
        for _ in range(100):
            if os.path.exists(sock):
                break
            time.sleep(0.05)
        t = time.perf_counter()
        c = socket.socket(socket.AF_UNIX)
        c.connect(sock)
        r = c.makefile("rb")
        pending = 0
        for i in range(args.tokens):
            c.sendall(exec_line(i, f"s{i % 50}"))
            if b"pending_hitl" in r.readline():
                pending += 1
        c.close()
        print(f"minted {pending} pending tokens in {time.perf_counter() - t:.1f} s")
        times = []
        for _ in range(10):
            t = time.perf_counter()
            body = scrape(port)
            times.append((time.perf_counter() - t) * 1e3)
        print(f"one /metrics scrape: median {pct(times, 0.5):.1f} ms ({len(body)} bytes)")
        result = {"tokens": pending, "scrape_median_ms": pct(times, 0.5), "rows": []}
        for scrapers in (0, 4):
            stop = multiprocessing.Event()
            threads = [multiprocessing.Process(target=scrape_loop, args=(port, stop))
                       for _ in range(scrapers)]
            for th in threads:
                th.start()
            time.sleep(0.3)
            lat = [fresh_request(sock, args.tokens + i) for i in range(args.n)]
            stop.set()
            for th in threads:
                th.join()
            row = {"scrapers": scrapers, "p50_ms": pct(lat, 0.5), "p99_ms": pct(lat, 0.99)}
            result["rows"].append(row)
            print(f"{scrapers} looping scrapers: a fresh request p50 {row['p50_ms']:.2f} ms, "
                  f"p99 {row['p99_ms']:.2f} ms")
        if args.json:
            with open(args.json, "w") as f:
                json.dump(result, f, indent=2)
    finally:
        server.terminate()
        server.wait(timeout=20)


if __name__ == "__main__":
    main()
