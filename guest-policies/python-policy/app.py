"""A Gavel policy in Python (built with componentize-py): `network-guard`.

Denies programs that reach the network, asks about package managers, allows the rest.
Configuration (JSON): {"deny": [...], "ask": [...], "probe": false}. With "probe": true the
policy instead tries to read a file, the environment and a socket, and reports what it got in
its reason: the host's sandbox must give it nothing.
"""

import json

from wit_world import exports
from wit_world.imports import host, types
from componentize_py_types import Err

DEFAULT_DENY = ["curl", "wget", "nc", "ncat", "ssh", "scp", "telnet"]
DEFAULT_ASK = ["pip", "npm", "apt", "apt-get", "cargo"]

_config = None


def _program(action):
    if isinstance(action, types.Action_LocalExec):
        first = action.value.executable
    else:
        words = action.value.arg.split()
        first = words[0] if words else ""
    return first.rsplit("/", 1)[-1]


def _probe():
    """Try what a sandboxed policy must not be able to do; say what happened."""
    seen = []
    try:
        with open("/etc/passwd") as f:
            seen.append("file: read %d bytes" % len(f.read()))
    except Exception as e:  # noqa: BLE001 - any failure is the expected outcome
        seen.append("file: %s" % type(e).__name__)
    import os
    seen.append("env: %d variables" % len(os.environ))
    try:
        import socket
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.connect(("127.0.0.1", 22))
        seen.append("socket: connected")
    except Exception as e:  # noqa: BLE001
        seen.append("socket: %s" % type(e).__name__)
    print("probe finished")  # stdout is captured into the host's log
    return "; ".join(seen)


class Decide(exports.Decide):
    def init(self) -> None:
        global _config
        try:
            raw = json.loads(host.config() or "{}")
        except ValueError as e:
            raise Err(types.PolicyError_InvalidConfig("configuration is not JSON: %s" % e))
        unknown = set(raw) - {"deny", "ask", "probe"}
        if unknown:
            raise Err(types.PolicyError_InvalidConfig("unknown key(s): %s" % ", ".join(sorted(unknown))))
        _config = {
            "deny": set(raw.get("deny", DEFAULT_DENY)),
            "ask": set(raw.get("ask", DEFAULT_ASK)),
            "probe": bool(raw.get("probe", False)),
        }

    def decide(self, action: types.Action) -> types.Decision:
        if _config is None:
            self.init()
        if _config["probe"]:
            return types.Decision(types.Verdict.DENY, _probe(), "probe", [])
        program = _program(action)
        if program in _config["deny"]:
            return types.Decision(types.Verdict.DENY, "`%s` reaches the network" % program, "deny:" + program, [])
        if program in _config["ask"]:
            return types.Decision(types.Verdict.ASK, "`%s` installs packages" % program, "ask:" + program, [])
        return types.Decision(types.Verdict.ALLOW, "`%s` is allowed" % program, None, [])
