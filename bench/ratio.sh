#!/usr/bin/env bash
# proteus-mock against the Node socket.io 4.8 reference server, both driven
# by proteus-load in the same run (alternating), for the fan-out and the
# many-chats workloads: the ratio table of docs/BENCHMARKS.md.
# Loopback only; every run is bounded. Prints one JSON line per run, then
# the table (medians).
#
#   bench/ratio.sh [ROUNDS]      (default 2)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-2}
MOCK_PORT=4321
NODE_PORT=4322
cargo build --release -p proteus-mock -p proteus-load --bins >&2
(cd bench/node-reference && npm ci --no-audit --no-fund >&2)
./target/release/proteus-mock --port $MOCK_PORT --journal-size 0 > /dev/null 2>&1 &
MOCK=$!
node bench/node-reference/server.mjs $NODE_PORT > /dev/null 2>&1 &
NODE=$!
trap 'kill $MOCK $NODE 2>/dev/null || true' EXIT
sleep 1.5
OUT=$(mktemp)
REPORT=$(mktemp)
run() { # server port pid workload args...
  local server=$1 port=$2 pid=$3 workload=$4; shift 4
  timeout 180 ./target/release/proteus-load run --target "http://127.0.0.1:$port" --server-pid "$pid" \
    --json "$REPORT" "$@" > /dev/null 2>&1 || true
  python3 - "$REPORT" "$server" "$workload" <<'PY' | tee -a "$OUT"
import json, sys
d = json.load(open(sys.argv[1])); c = d["counters"]; l = d["latencyMs"]; cpu = d["cpu"]
p = lambda k, q: (l.get(k) or {}).get(q)
print(json.dumps({"server": sys.argv[2], "workload": sys.argv[3], "deltas": c["deltas"], "deltasPerSecond": round(c["deltasPerSecond"]),
  "loss": c["loss"], "completed": c["completed"], "started": c["started"], "ttfdP50": p("ttfd", "p50"), "ttfdP99": p("ttfd", "p99"),
  "gapP99": p("gap", "p99"), "serverCpuSeconds": cpu["serverSeconds"], "deltasPerServerCpuSecond": round(cpu["deltasPerServerCore"] or 0)}))
PY
}
for _ in $(seq "$ROUNDS"); do
  for s in mock node; do
    if [ $s = mock ]; then port=$MOCK_PORT pid=$MOCK name=proteus-mock; else port=$NODE_PORT pid=$NODE name=node-socket.io-4.8; fi
    # Fan-out: 100 sockets in one room, 40 streams/s of 50 deltas for 5 s (200,000 deltas/s offered).
    run $name $port $pid fanout --scenario fanout --subscribers 100 --rate 40 --duration 5s --chunks 50 --grace 20s
    # Many chats: 1,000 sockets each in its own chat; 250 streams/s for 4 s, 200 deltas 20 ms apart.
    run $name $port $pid many-chats --scenario chat --users 1000 --rate 250 --duration 4s --chunks 200 --chunk-delay-ms 20 --grace 20s
  done
done
python3 - "$OUT" <<'PY'
import json, sys, statistics as st
rows = [json.loads(l) for l in open(sys.argv[1])]
def med(server, workload, k):
    v = [r[k] for r in rows if r["server"] == server and r["workload"] == workload and r[k] is not None]
    return st.median(v) if v else None
print("\n| workload | metric | proteus-mock | node socket.io 4.8 | ratio |")
print("|---|---|---|---|---|")
for w in ["fanout", "many-chats"]:
    for k, better in [("deltasPerSecond", "higher"), ("deltasPerServerCpuSecond", "higher"), ("ttfdP99", "lower"), ("gapP99", "lower"), ("loss", "lower")]:
        m, n = med("proteus-mock", w, k), med("node-socket.io-4.8", w, k)
        ratio = "" if not m or not n else (f"{m / n:.1f}x" if better == "higher" else f"{n / m:.1f}x better")
        print(f"| {w} | {k} | {m} | {n} | {ratio} |")
PY
