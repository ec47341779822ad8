#!/usr/bin/env bash
# The whole benchmark suite, one command:  bash host/benches/run-all.sh
# Writes target/bench/*.json and prints the tables docs/PERFORMANCE.md quotes.
# Takes about 5 minutes on 2 cores after the release build. Loopback and local sockets only.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
out="$CARGO_TARGET_DIR/bench"
mkdir -p "$out"
seconds="${GAVEL_BENCH_SECONDS:-4}"

cargo build -q --release --bin gavel --bin gavel-load
bin="$CARGO_TARGET_DIR/release"

echo "== in-process decisions, instance modes, policy load"
cargo bench -q -p gavel-host --bench decision_latency -- 100000 --json "$out/decisions.json"

echo "== token stores"
cargo bench -q -p gavel-host --bench store_latency -- 2000 | tee "$out/stores.txt"

work="$(mktemp -d)"
cleanup() { pkill -P $$ 2>/dev/null || true; kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work"; }
pids=()
trap cleanup EXIT

cat > "$work/serve.toml" <<TOML
socket = "$work/gavel.sock"
max_connections = 4096
[store]
kind = "memory"
[[policy]]
name = "allow"
builtin = "default-action"
config = { action = "allow" }
TOML
"$bin/gavel" serve --config "$work/serve.toml" > "$work/serve.out" 2>&1 & pids+=($!)
"$bin/gavel-load" --bare-server "$work/bare.sock" > "$work/bare.out" 2>&1 & pids+=($!)
sleep 1

echo "== the socket: gavel against the bare fixed-answer server"
: > "$out/socket.jsonl"
for clients in 1 8 32 128; do
  for mode in "" "--persistent"; do
    for target in bare gavel; do
      "$bin/gavel-load" --socket "$work/$target.sock" --clients "$clients" --seconds "$seconds" $mode --json \
        | python3 -c "import json,sys; r=json.load(sys.stdin); r['server']='$target'; print(json.dumps(r))" >> "$out/socket.jsonl"
    done
  done
done
kill "${pids[@]}" 2>/dev/null || true; pids=()
sleep 0.5

echo "== memory: gavel serve with 10 policies and 10,000 live tokens"
{
  echo "socket = \"$work/rss.sock\""
  echo "[store]"; echo "kind = \"memory\""
  for i in 0 1 2 3 4; do
    echo "[[policy]]"; echo "name = \"default-$i\""; echo "builtin = \"default-action\""; echo "config = { action = \"allow\" }"
  done
  for i in 0 1 2 3; do
    echo "[[policy]]"; echo "name = \"rules-$i\""; echo "builtin = \"command-rules\""
    echo "config = { global = { allow = [\"run_command(make *)\"], deny = [\"run_command(rm *)\"] } }"
  done
  echo "[[policy]]"; echo "name = \"ask\""; echo "builtin = \"default-action\""; echo "config = { action = \"pending_hitl\" }"
} > "$work/rss.toml"
"$bin/gavel" serve --config "$work/rss.toml" > "$work/rss.out" 2>&1 & serve_pid=$!; pids+=($serve_pid)
sleep 1
python3 - "$work/rss.sock" "$serve_pid" "$out/memory.json" <<'PY'
import json, socket, sys
path, pid, out = sys.argv[1], sys.argv[2], sys.argv[3]
def status(key):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(key):
            return int(line.split()[1])  # KiB
before = status("VmRSS:")
s = socket.socket(socket.AF_UNIX); s.connect(path); f = s.makefile("rwb")
tokens = 0
for i in range(10000):
    req = {"action": "tool.call", "tool": "run_command", "arg": f"make target-{i}", "sandbox_id": "b", "session_id": "s"}
    f.write((json.dumps(req) + "\n").encode()); f.flush()
    if json.loads(f.readline())["decision"] == "pending_hitl":
        tokens += 1
result = {"policies": 10, "live_tokens": tokens, "rss_start_kib": before, "rss_kib": status("VmRSS:"), "peak_rss_kib": status("VmHWM:")}
json.dump(result, open(out, "w"))
print(f"{tokens} live tokens; RSS {result['rss_kib']/1024:.1f} MiB, peak {result['peak_rss_kib']/1024:.1f} MiB (at start {before/1024:.1f} MiB)")
PY

echo "== summary"
python3 - "$out" <<'PY'
import json, sys, collections
out = sys.argv[1]
d = json.load(open(f"{out}/decisions.json"))
print("| scenario | median (us) | p99 (us) |\n|---|---|---|")
for r in d["decisions"]:
    print(f"| {r['name']} | {r['median_us']:.2f} | {r['p99_us']:.2f} |")
for r in d["ratios"]:
    print(f"| wasm / native, {r['name']} | {r['median_ratio']:.2f}x | {r['p99_ratio']:.2f}x |")
l = d["load"]
print(f"\npolicy load (10 policies): cold {l['cold_ms_per_policy']:.1f} ms/policy, cached {l['cached_ms_per_policy']:.2f} ms/policy\n")
rows = [json.loads(x) for x in open(f"{out}/socket.jsonl")]
by = collections.defaultdict(dict)
for r in rows:
    by[(r["clients"], r["mode"])][r["server"]] = r
print("| clients | mode | bare /s | bare p50/p99 (us) | gavel /s | gavel p50/p99 (us) | gavel/bare throughput | p99 ratio |\n|---|---|---|---|---|---|---|---|")
for (c, m), v in sorted(by.items()):
    b, g = v["bare"], v["gavel"]
    print(f"| {c} | {m} | {b['per_second']:.0f} | {b['p50_us']:.0f}/{b['p99_us']:.0f} | {g['per_second']:.0f} | {g['p50_us']:.0f}/{g['p99_us']:.0f} | {g['per_second']/b['per_second']:.0%} | {g['p99_us']/b['p99_us']:.2f}x |")
m = json.load(open(f"{out}/memory.json"))
print(f"\nmemory: {m['policies']} policies, {m['live_tokens']} live tokens: RSS {m['rss_kib']/1024:.1f} MiB, peak {m['peak_rss_kib']/1024:.1f} MiB")
PY
