#!/usr/bin/env python3
"""Differential test of builtin:http-rules against real HTTP servers and routers.

Starts real servers on 127.0.0.1 (ephemeral ports), each serving one tree of allowed and denied
resources whose bodies name the resource (``RESOURCE-ALLOWED ...``, ``RESOURCE-DENIED ...``).
Sends a few thousand request targets to each, raw (the request line written to a socket, so no
client library normalizes it), and records which targets reached a denied resource on which
server. Every target is also judged by the http-rules library natively (the ``judge`` example of
http-rules-core) and by the bundled wasm policy through ``gavel eval``, under two rule sets.

Fails (exit 1) when Gavel allows a target that some server resolved to a denied resource, when the
native library and the wasm policy disagree, or when a benign path is not allowed.

Usage: run.py --judge PATH/TO/judge --gavel PATH/TO/gavel [--node-modules DIR] [--skip-wasm]
       [--only NAME,...] [--json FILE]
Servers whose program is missing are reported and skipped; --require NAME,... makes a missing one
an error (CI requires all of them).
"""

import argparse
import concurrent.futures
import importlib.metadata
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
DENIED_MARK = b"RESOURCE-DENIED"

# Allowed: /public/**, /api/v1/users/**. Denied: /admin/**, /api/v1/admin/**.
TREE = {
    "index.html": "RESOURCE-NEUTRAL /\n",
    "public/index.html": "RESOURCE-ALLOWED /public/\n",
    "public/x": "RESOURCE-ALLOWED /public/x\n",
    # What `//public/admin/secret` names to a server that collapses slashes.
    "public/admin/secret": "RESOURCE-ALLOWED /public/admin/secret\n",
    "api/v1/users/index.html": "RESOURCE-ALLOWED /api/v1/users/\n",
    "api/v1/users/me": "RESOURCE-ALLOWED /api/v1/users/me\n",
    "admin/index.html": "RESOURCE-DENIED /admin/\n",
    "admin/secret": "RESOURCE-DENIED /admin/secret\n",
    "admin/public/x": "RESOURCE-DENIED /admin/public/x\n",
    "api/v1/admin/index.html": "RESOURCE-DENIED /api/v1/admin/\n",
    "api/v1/admin/secret": "RESOURCE-DENIED /api/v1/admin/secret\n",
    "api/v1/admin/users/me": "RESOURCE-DENIED /api/v1/admin/users/me\n",
}

RULES_DEFAULT_DENY = {
    "default": "deny",
    "requests": [
        {"id": "public", "verdict": "allow", "paths": ["/public/**", "/api/v1/users/**"]},
        {"id": "admin", "verdict": "deny", "paths": ["/admin/**", "/api/v1/admin/**"]},
    ],
}
# With everything else allowed, only the deny rules stand between a target and the admin pages.
RULES_DEFAULT_ALLOW = {
    "default": "allow",
    "requests": [
        {"id": "admin", "verdict": "deny", "paths": ["/admin/**", "/api/v1/admin/**"]},
    ],
}


# ---------------------------------------------------------------------------------------------
# Request targets


def traversal_targets():
    starts = ["/public", "/public/x", "/api/v1/users", "/admin", "/api/v1/admin", "/ADMIN", ""]
    dots = ["..", "%2e%2e", "%2E%2E", ".%2e", "%2e.", ".%2E", "%252e%252e", "%25%32%65%25%32%65",
            "..;", "..;x=1", "..%3b", "%2e%2e;", "..%00", "%c0%ae%c0%ae", "%ef%bc%8e%ef%bc%8e",
            "\uff0e\uff0e", "...", "..%20", "..%09", ".", "%2e"]
    seps = ["/", "\\", "%2f", "%2F", "%5c", "%5C", "//", "/./", "/;/", ";/", "%252f", "%c0%af",
            "%ef%bc%8f"]
    dests = ["admin/secret", "public/x", "api/v1/admin/secret", "api/v1/users/me", "ADMIN/secret",
             "%61dmin/secret", "admin/", "public/../admin/secret"]
    out = set()
    for start in starts:
        for dot in dots:
            for dest in dests:
                out.add(f"{start}/{dot}/{dest}")
    rng = random.Random(15)
    product = [(s, d, p, t) for s in starts for d in dots for p in seps for t in dests]
    for start, dot, sep, dest in rng.sample(product, 700):
        out.add(f"{start}{sep}{dot}{sep}{dest}")
    for start in ["/public", "/public/x", "/admin", "/api/v1/users/me"]:
        for dot in ["..", "%2e%2e", "..;", "%252e%252e"]:
            for sep in seps:
                out.add(f"{start}{sep}{dot}{sep}{dot}{sep}admin/secret")
                out.add(f"{start}{sep}x{sep}{dot}{sep}{dot}{sep}admin{sep}secret")
    return out


def authority_targets():
    out = set()
    for lead in ["//", "///", "////", "/\\", "/\\\\", "//\\"]:
        for host in ["public", "admin", "x", "127.0.0.1", "user@public", "public:80", "api",
                     "PUBLIC", "public%2fx"]:
            for rest in ["admin/secret", "public/x", "v1/admin/secret", "api/v1/admin/secret",
                         "v1/users/me", "", "../admin/secret", "%2e%2e/admin/secret"]:
                out.add(f"{lead}{host}/{rest}")
    return out


def spelling_targets():
    out = set()
    for denied in ["admin/secret", "api/v1/admin/secret", "admin", "admin/", "api/v1/admin"]:
        out.add("/" + denied)
        # Each letter percent-encoded, either hex case, and double-encoded.
        for i, ch in enumerate(denied):
            if ch.isalpha():
                h = f"{ord(ch):02x}"
                for spelled in (f"%{h}", f"%{h.upper()}", f"%25{h}"):
                    out.add("/" + denied[:i] + spelled + denied[i + 1:])
        # Case.
        out.add("/" + denied.upper())
        out.add("/" + denied.capitalize())
        out.add("/" + "".join(c.upper() if i % 2 else c for i, c in enumerate(denied)))
        # Separators and trailing forms.
        for variant in [denied.replace("/", "//"), denied.replace("/", "/./"),
                        denied.replace("/", "\\"), denied.replace("/", "%2f"),
                        denied.replace("/", ";x/"), denied.replace("/", "/;/"),
                        denied + "/.", denied + "/./", denied + ".", denied + "%20",
                        denied + "%00", denied + "%09", denied + "%0a", denied + ";",
                        denied + ";jsessionid=1", denied + "%3b", denied + "#x",
                        denied + "?x=1", denied + "%23", denied + "%3f", denied + "~",
                        denied + "::$DATA", denied.replace("a", "%u0061", 1)]:
            out.add("/" + variant)
        # Unicode look-alikes: fullwidth letters, dotless i, Kelvin sign, raw and encoded.
        for a, b in [("a", "\uff41"), ("i", "\u0131"), ("n", "\uff4e"), ("s", "\u017f"),
                     ("A", "\uff21"), ("k", "\u212a")]:
            if a in denied:
                raw = denied.replace(a, b, 1)
                out.add("/" + raw)
                out.add("/" + "".join(f"%{x:02X}" if x > 0x7f else chr(x)
                                      for x in raw.encode()))
    # ;params and smuggling through the query or the fragment.
    for t in ["/admin;x/secret", "/admin;/secret", "/public;/../admin/secret",
              "/public/x;/../../admin/secret", "/public/;/../admin/secret",
              "/public/x?/../../admin/secret", "/public/x#/../../admin/secret",
              "/public%3F/../admin/secret", "/public%23/../admin/secret",
              "/public/x%3f/../../admin/secret", "/public/x%23/../../admin/secret",
              "/public?/../admin/secret", "/admin?/../public/x", "/admin#/../public/x",
              "/admin%3f/../public/x", "/admin%23/../public/x"]:
        out.add(t)
    return out


def issue_targets():
    """The bypasses named in issue 15."""
    return {"/admin/../public/x", "/admin/%2e%2e/public/x", "/admin/.%2E/public/x",
            "/api/v1/admin/../users/me", "/ADMIN/../public/x", "//public/admin/secret"}


def benign_targets():
    names = ["x", "index.html", "a%20b", "caf%C3%A9", "%E2%82%AC", "na%C3%AFve%20file.txt",
             "a-b_c.d~e", "%7Euser", "a+b", "a,b", "(x)", "report%202026.pdf", "x.tar.gz",
             "%E6%97%A5%E6%9C%AC", "v1.2.3", "a%2Cb", "q=1", "x;v=1", "...x", "x..", ".well-known",
             "%41BC", "a'b", "a!b", "a*b", "a$b", "a@b", "a%25", "100%25off"]
    out = []
    for prefix in ["/public", "/api/v1/users"]:
        out.append(prefix)
        out.append(prefix + "/")
        for name in names:
            out.append(f"{prefix}/{name}")
            out.append(f"{prefix}/dir/{name}")
            out.append(f"{prefix}/{name}/")
            out.append(f"{prefix}/a/b/c/{name}")
    for size in [1024, 4096, 4097, 8192, 16384, 32768, 60 * 1024]:
        body = ("segment-" * (size // 8 + 1))
        long_path = "/public/" + "/".join(body[i:i + 100] for i in range(0, len(body), 100))
        out.append(long_path[:size])
        out.append("/public" + "/caf%C3%A9" * ((size - 7) // 10))
    return out


def all_targets():
    targets = set()
    for family in (traversal_targets, authority_targets, spelling_targets, issue_targets):
        targets |= family()
    # A request line carries no raw space or line break; those are not requests at all.
    return sorted(t for t in targets if not any(c in t for c in " \r\n"))


# ---------------------------------------------------------------------------------------------
# Servers


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def first_line(cmd):
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (p.stdout + p.stderr).strip()
    return text.splitlines()[0] if text else None


def package_version(name):
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def node_module_version(modules, name):
    try:
        with open(os.path.join(modules, name, "package.json")) as f:
            return json.load(f)["version"]
    except (OSError, ValueError, KeyError):
        return None


NGINX_CONF = """
daemon off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log;
events {{ worker_connections 256; }}
http {{
  access_log off;
  client_body_temp_path {tmp}/nginx-body;
  proxy_temp_path {tmp}/nginx-proxy;
  fastcgi_temp_path {tmp}/nginx-fastcgi;
  uwsgi_temp_path {tmp}/nginx-uwsgi;
  scgi_temp_path {tmp}/nginx-scgi;
  server {{ listen 127.0.0.1:{p0}; root {tree}; }}
  server {{ listen 127.0.0.1:{p1}; root {tree}; merge_slashes off; }}
  server {{ listen 127.0.0.1:{p2}; location / {{ proxy_pass http://127.0.0.1:{upstream}; }} }}
  server {{ listen 127.0.0.1:{p3}; location / {{ proxy_pass http://127.0.0.1:{upstream}/; }} }}
}}
"""

APACHE_CONF = """
ServerRoot /etc/apache2
PidFile {tmp}/apache.pid
Mutex file:{tmp} default
ErrorLog {tmp}/apache-error.log
LoadModule mpm_event_module /usr/lib/apache2/modules/mod_mpm_event.so
LoadModule authz_core_module /usr/lib/apache2/modules/mod_authz_core.so
LoadModule dir_module /usr/lib/apache2/modules/mod_dir.so
User {user}
Group {group}
ServerName 127.0.0.1
Listen 127.0.0.1:{p0}
Listen 127.0.0.1:{p1}
DirectoryIndex index.html
<Directory {tree}>
  Require all granted
</Directory>
<VirtualHost 127.0.0.1:{p0}>
  DocumentRoot {tree}
</VirtualHost>
<VirtualHost 127.0.0.1:{p1}>
  DocumentRoot {tree}
  AllowEncodedSlashes On
  MergeSlashes Off
</VirtualHost>
"""

LIGHTTPD_CONF = """
server.document-root = "{tree}"
server.bind = "127.0.0.1"
server.port = {p0}
server.pid-file = "{tmp}/lighttpd.pid"
index-file.names = ("index.html")
{user_line}
"""


class Servers:
    """Starts the servers, remembers their PIDs, stops them by PID."""

    def __init__(self, tmp, tree, node_modules):
        self.tmp, self.tree, self.node_modules = tmp, tree, node_modules
        self.procs = []  # (label, Popen)
        self.endpoints = []  # (name, family, port)
        self.versions = {}
        self.skipped = {}

    def spawn(self, label, cmd, env=None):
        log = open(os.path.join(self.tmp, f"{label}.log"), "wb")
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env, start_new_session=True)
        self.procs.append((label, proc))
        return proc

    def add(self, name, family, port):
        self.endpoints.append((name, family, port))

    def start(self, only):
        def wanted(name):
            return not only or name in only

        node = shutil.which("node")
        python = sys.executable
        express = {}
        for module in ("express", "express4"):
            version = node_module_version(self.node_modules, module) if self.node_modules else None
            if version:
                express[module] = version
        upstream = None
        # Express first: nginx proxies to it.
        for module, version in express.items():
            name = f"express{version.split('.')[0]}"
            if not (wanted(name) or (module == "express" and wanted("nginx")) or not node):
                continue
            port = free_port()
            env = dict(os.environ, NODE_PATH=self.node_modules)
            self.spawn(name, [node, os.path.join(HERE, "servers/express_app.js"), module,
                              str(port), self.tree], env)
            if wanted(name):
                self.add(name, "Express router + static", port)
            self.versions[name] = f"Express {version} (Node {first_line([node, '--version'])})"
            if module == "express":
                upstream = port
        for module in ("express", "express4"):
            if module not in express:
                self.skipped[f"express ({module})"] = f"not installed under {self.node_modules}"
        if node:
            for mode in ("whatwg", "legacy"):
                name = f"node-{mode}"
                if wanted(name):
                    port = free_port()
                    self.spawn(name, [node, os.path.join(HERE, "servers/node_url.js"), mode,
                                      str(port), self.tree])
                    label = "new URL()" if mode == "whatwg" else "url.parse()"
                    self.add(name, f"Node http + {label}", port)
                    self.versions[name] = f"Node {first_line([node, '--version'])}"
        else:
            self.skipped["node"] = "node not found"
        if wanted("starlette"):
            if package_version("starlette") and package_version("uvicorn"):
                port = free_port()
                self.spawn("starlette", [python, os.path.join(HERE, "servers/starlette_app.py"),
                                         str(port), self.tree])
                self.add("starlette", "Starlette router + StaticFiles", port)
                self.versions["starlette"] = (f"Starlette {package_version('starlette')} on "
                                              f"uvicorn {package_version('uvicorn')}")
            else:
                self.skipped["starlette"] = "starlette or uvicorn not installed"
        if wanted("flask"):
            if package_version("flask"):
                port = free_port()
                self.spawn("flask", [python, os.path.join(HERE, "servers/flask_app.py"),
                                     str(port), self.tree])
                self.add("flask", "Flask router + send_from_directory", port)
                self.versions["flask"] = (f"Flask {package_version('flask')} on Werkzeug "
                                          f"{package_version('werkzeug')}")
            else:
                self.skipped["flask"] = "flask not installed"
        if wanted("python-http.server"):
            port = free_port()
            self.spawn("python-http.server", [python, "-m", "http.server", "--bind", "127.0.0.1",
                                              "--directory", self.tree, str(port)])
            self.add("python-http.server", "Python http.server (files)", port)
            self.versions["python-http.server"] = f"Python {sys.version.split()[0]} http.server"
        nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx")
                                           else None)
        if wanted("nginx") and nginx:
            ports = [free_port() for _ in range(4)]
            conf = os.path.join(self.tmp, "nginx.conf")
            with open(conf, "w") as f:
                f.write(NGINX_CONF.format(tmp=self.tmp, tree=self.tree, p0=ports[0], p1=ports[1],
                                          p2=ports[2], p3=ports[3], upstream=upstream or 9))
            self.spawn("nginx", [nginx, "-e", os.path.join(self.tmp, "nginx-error.log"),
                                 "-p", self.tmp, "-c", conf])
            self.add("nginx", "nginx static", ports[0])
            self.add("nginx-merge_slashes-off", "nginx static, merge_slashes off", ports[1])
            if upstream:
                self.add("nginx-proxy-raw", "nginx proxy_pass (URI as sent) -> Express", ports[2])
                self.add("nginx-proxy-normalized",
                         "nginx proxy_pass (normalized URI) -> Express", ports[3])
            self.versions["nginx"] = first_line([nginx, "-v"])
        elif wanted("nginx"):
            self.skipped["nginx"] = "nginx not found"
        apache = shutil.which("apache2") or ("/usr/sbin/apache2"
                                             if os.path.exists("/usr/sbin/apache2") else None)
        if wanted("apache") and apache and os.path.isdir("/usr/lib/apache2/modules"):
            ports = [free_port() for _ in range(2)]
            conf = os.path.join(self.tmp, "apache.conf")
            user = "www-data" if os.geteuid() == 0 else "#%d" % os.geteuid()
            group = "www-data" if os.geteuid() == 0 else "#%d" % os.getegid()
            with open(conf, "w") as f:
                f.write(APACHE_CONF.format(tmp=self.tmp, tree=self.tree, p0=ports[0], p1=ports[1],
                                           user=user, group=group))
            self.spawn("apache", [apache, "-f", conf, "-DFOREGROUND"])
            self.add("apache", "Apache httpd static", ports[0])
            self.add("apache-encoded-slashes",
                     "Apache httpd, AllowEncodedSlashes On, MergeSlashes Off", ports[1])
            self.versions["apache"] = first_line([apache, "-v"])
        elif wanted("apache"):
            self.skipped["apache"] = "apache2 not found"
        lighttpd = shutil.which("lighttpd") or ("/usr/sbin/lighttpd"
                                                if os.path.exists("/usr/sbin/lighttpd") else None)
        if wanted("lighttpd") and lighttpd:
            port = free_port()
            conf = os.path.join(self.tmp, "lighttpd.conf")
            user_line = 'server.username = "www-data"' if os.geteuid() == 0 else ""
            with open(conf, "w") as f:
                f.write(LIGHTTPD_CONF.format(tmp=self.tmp, tree=self.tree, p0=port,
                                             user_line=user_line))
            self.spawn("lighttpd", [lighttpd, "-D", "-f", conf])
            self.add("lighttpd", "lighttpd static", port)
            self.versions["lighttpd"] = first_line([lighttpd, "-v"])
        elif wanted("lighttpd"):
            self.skipped["lighttpd"] = "lighttpd not found"

    def wait_ready(self, timeout=30.0):
        deadline = time.monotonic() + timeout
        pending = list(self.endpoints)
        while pending and time.monotonic() < deadline:
            for label, proc in self.procs:
                if proc.poll() is not None:
                    raise SystemExit(f"server `{label}` exited early (status {proc.returncode}); "
                                     f"see {self.tmp}/{label}.log:\n" + read_tail(
                                         os.path.join(self.tmp, f"{label}.log")))
            still = []
            for endpoint in pending:
                status, _ = fetch(endpoint[2], "/public/x", timeout=2.0)
                if status is None:
                    still.append(endpoint)
            pending = still
            if pending:
                time.sleep(0.2)
        if pending:
            raise SystemExit("servers not answering after %.0f s: %s" % (
                timeout, ", ".join(e[0] for e in pending)))

    def stop(self):
        for label, proc in self.procs:
            if proc.poll() is None:
                try:
                    # Each server runs in its own session (process group), so nginx and Apache
                    # workers go with their master.
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for label, proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def read_tail(path, n=2000):
    try:
        with open(path, "rb") as f:
            return f.read()[-n:].decode("utf-8", "replace")
    except OSError:
        return ""


def fetch(port, target, timeout=10.0):
    """Send one raw GET; return (status, body) or (None, b'') when the connection failed."""
    request = (b"GET " + target.encode("utf-8", "surrogateescape") +
               b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(request)
            chunks = []
            while True:
                data = s.recv(65536)
                if not data:
                    break
                chunks.append(data)
    except OSError:
        return None, b""
    response = b"".join(chunks)
    head, _, body = response.partition(b"\r\n\r\n")
    parts = head.split(b" ", 2)
    try:
        status = int(parts[1]) if len(parts) > 1 else 0
    except ValueError:
        status = 0
    return status, body


# ---------------------------------------------------------------------------------------------
# Judging


def judge_native(judge, rules, targets, tmp, name):
    config = os.path.join(tmp, f"{name}.json")
    with open(config, "w") as f:
        json.dump(rules, f)
    data = "".join(json.dumps(t) + "\n" for t in targets)
    p = subprocess.run([judge, config], input=data, capture_output=True, text=True, check=False)
    if p.returncode != 0:
        raise SystemExit(f"the native judge failed: {p.stderr.strip()}")
    answers = [json.loads(line) for line in p.stdout.splitlines()]
    if len(answers) != len(targets):
        raise SystemExit("the native judge answered %d of %d targets" % (len(answers), len(targets)))
    return answers


def judge_wasm(gavel, rules, targets, tmp, name):
    lines = []
    for t in targets:
        path, sep, query = t.partition("?")
        line = {"action": "http.request", "method": "GET", "scheme": "http", "host": "127.0.0.1",
                "port": 80, "path": path, "sandbox_id": "sbx", "session_id": "diff"}
        if sep:
            line["query"] = query
        lines.append(json.dumps(line))
    requests = os.path.join(tmp, f"{name}.jsonl")
    with open(requests, "w") as f:
        f.write("\n".join(lines) + "\n")
    p = subprocess.run([gavel, "eval", "--policy", "builtin:http-rules", "--policy-config",
                        json.dumps(rules), "--request", requests], capture_output=True, text=True,
                       check=False)
    if p.returncode != 0:
        raise SystemExit(f"gavel eval failed ({p.returncode}): {p.stderr.strip()[-2000:]}")
    answers = [json.loads(line) for line in p.stdout.splitlines()]
    if len(answers) != len(targets):
        raise SystemExit("gavel eval answered %d of %d targets" % (len(answers), len(targets)))
    return answers


def wasm_verdict(answer):
    return {"allow": "allow", "deny": "deny", "pending_hitl": "ask"}.get(answer.get("decision"),
                                                                           "deny")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--judge", required=True, help="the http-rules-core `judge` example binary")
    ap.add_argument("--gavel", help="the gavel binary (for the wasm policy); required unless "
                    "--skip-wasm")
    ap.add_argument("--skip-wasm", action="store_true")
    ap.add_argument("--node-modules", help="a node_modules folder holding express (5) and "
                    "express4 (express@4)")
    ap.add_argument("--only", help="comma-separated server names to run")
    ap.add_argument("--require", default="", help="comma-separated server names that must run")
    ap.add_argument("--workers", type=int, default=24)
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--report-only", action="store_true",
                    help="report bypasses but exit 0 (to measure an old build)")
    args = ap.parse_args()
    if not args.skip_wasm and not args.gavel:
        ap.error("--gavel is required unless --skip-wasm")
    started = time.monotonic()
    only = set(filter(None, (args.only or "").split(",")))
    targets = all_targets()
    benign = benign_targets()

    tmp = tempfile.mkdtemp(prefix="gavel-http-diff-")
    os.chmod(tmp, 0o755)  # the servers' workers may run as www-data
    tree = os.path.join(tmp, "tree")
    for rel, body in TREE.items():
        path = os.path.join(tree, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(body)
    for root, dirs, files in os.walk(tmp):
        for d in dirs:
            os.chmod(os.path.join(root, d), 0o755)
        for f in files:
            os.chmod(os.path.join(root, f), 0o644)

    servers = Servers(tmp, tree, args.node_modules)
    reached = {t: [] for t in targets}
    try:
        servers.start(only)
        missing = [n for n in filter(None, args.require.split(","))
                   if not any(e[0] == n for e in servers.endpoints)]
        if missing:
            raise SystemExit("required servers did not start: " + ", ".join(missing) +
                             "".join(f"\n  {k}: {v}" for k, v in servers.skipped.items()))
        servers.wait_ready()
        # Sanity: every server serves an allowed and a denied resource by its plain path, so a
        # server that answers nothing cannot pass for one that resolves nothing.
        for name, _, port in servers.endpoints:
            status, body = fetch(port, "/admin/secret")
            if status != 200 or DENIED_MARK not in body:
                raise SystemExit(f"server `{name}` does not serve /admin/secret ({status}): "
                                 f"{body[:200]!r}")
        jobs = [(e, t) for e in servers.endpoints for t in targets]
        send_started = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(args.workers) as pool:
            for (name, _, _), t, (status, body) in zip(
                    (j[0] for j in jobs), (j[1] for j in jobs),
                    pool.map(lambda j: fetch(j[0][2], j[1]), jobs, chunksize=16)):
                if status is not None and 200 <= status < 300 and DENIED_MARK in body:
                    reached[t].append(name)
        send_seconds = time.monotonic() - send_started
    finally:
        servers.stop()

    failures = []
    results = {"servers": [{"name": n, "kind": k} for n, k, _ in servers.endpoints],
               "versions": servers.versions, "skipped": servers.skipped,
               "targets": len(targets), "requests": len(targets) * len(servers.endpoints),
               "send_seconds": round(send_seconds, 1), "rule_sets": {}}
    reaching = [t for t in targets if reached[t]]
    for rules_name, rules in [("default-deny", RULES_DEFAULT_DENY),
                              ("default-allow", RULES_DEFAULT_ALLOW)]:
        native = judge_native(args.judge, rules, targets + benign, tmp, rules_name)
        wasm = (None if args.skip_wasm else
                judge_wasm(args.gavel, rules, targets + benign, tmp, rules_name))
        bypass_native, bypass_wasm, disagree = [], [], []
        for i, t in enumerate(targets):
            nv = native[i]["verdict"]
            if reached[t] and nv == "allow":
                bypass_native.append((t, reached[t], native[i]["reason"]))
            if wasm is not None:
                wv = wasm_verdict(wasm[i])
                if reached[t] and wv == "allow":
                    bypass_wasm.append((t, reached[t], wasm[i].get("reason", "")))
                # The host refuses some paths before any policy sees them (a deny either way).
                refused = "policy" not in wasm[i].get("reason", "policy")
                if wv != nv and not (wv == "deny" and refused):
                    disagree.append((t, nv, wv, wasm[i].get("reason", "")))
        stats = {"allowed_native": sum(a["verdict"] == "allow" for a in native[:len(targets)]),
                 "bypasses_native": len(bypass_native),
                 "bypasses_wasm": None if wasm is None else len(bypass_wasm),
                 "native_wasm_disagreements": None if wasm is None else len(disagree)}
        if rules_name == "default-deny":
            b_native = native[len(targets):]
            allowed = [b for b, a in zip(benign, b_native) if a["verdict"] == "allow"]
            stats["benign"] = len(benign)
            stats["benign_allowed_native"] = len(allowed)
            not_allowed = [(b, a["reason"]) for b, a in zip(benign, b_native)
                           if a["verdict"] != "allow"]
            if wasm is not None:
                b_wasm = wasm[len(targets):]
                stats["benign_allowed_wasm"] = sum(wasm_verdict(a) == "allow" for a in b_wasm)
                not_allowed += [(b, "wasm: " + a.get("reason", "")) for b, a in zip(benign, b_wasm)
                                if wasm_verdict(a) != "allow"]
            for b, why in not_allowed[:20]:
                failures.append(f"[{rules_name}] benign path not allowed: {b[:120]!r}: {why[:300]}")
        results["rule_sets"][rules_name] = stats
        for t, where, why in bypass_native[:40]:
            failures.append(f"[{rules_name}] native allowed {t!r}, which reached a denied "
                            f"resource on {', '.join(where)}: {why}")
        for t, where, why in bypass_wasm[:40]:
            failures.append(f"[{rules_name}] wasm allowed {t!r}, which reached a denied resource "
                            f"on {', '.join(where)}: {why}")
        for t, nv, wv, why in disagree[:20]:
            failures.append(f"[{rules_name}] native says {nv}, wasm says {wv} for {t!r}: {why}")

    results["reaching_denied"] = len(reaching)
    results["reached"] = {t: reached[t] for t in reaching}
    results["reaching_denied_by_server"] = {
        n: sum(n in reached[t] for t in targets) for n, _, _ in servers.endpoints}
    results["seconds"] = round(time.monotonic() - started, 1)
    print("http differential: %d servers, %d targets (%d requests, sent in %.1f s), %d reached a "
          "denied resource somewhere" % (len(servers.endpoints), len(targets), results["requests"],
                                         send_seconds, len(reaching)))
    for name, version in sorted(servers.versions.items()):
        print(f"  {name}: {version}")
    for name, why in servers.skipped.items():
        print(f"  skipped {name}: {why}")
    for n, count in results["reaching_denied_by_server"].items():
        print(f"  {n}: {count} targets reached a denied resource")
    for rules_name, stats in results["rule_sets"].items():
        print(f"  rules {rules_name}: {json.dumps(stats)}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    shutil.rmtree(tmp, ignore_errors=True)
    for line in failures:
        print("FAIL " + line)
    print("%d passed, %d failed" % (0 if failures else 1, 1 if failures else 0))
    print("done in %.1f s" % results["seconds"])
    if failures and not args.report_only:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
