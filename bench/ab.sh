#!/usr/bin/env bash
# Two builds of proteus-mock side by side: the ratio table's fan-out and
# many-chats workloads, alternating A and B in each round, driven by the
# same proteus-load. For "no performance regression" checks of a change:
# build the old mock (e.g. from a git worktree at the old commit) and the
# new one, then compare medians. Loopback only; every run is bounded.
#
#   bench/ab.sh OLD_MOCK NEW_MOCK [ROUNDS]     (default 3)
#   LOAD=path/to/proteus-load bench/ab.sh ...  (default target/release/proteus-load)
set -euo pipefail
cd "$(dirname "$0")/.."
A=${1:?usage: bench/ab.sh OLD_MOCK NEW_MOCK [ROUNDS]}
B=${2:?usage: bench/ab.sh OLD_MOCK NEW_MOCK [ROUNDS]}
ROUNDS=${3:-3}
LOAD=${LOAD:-target/release/proteus-load}
PORT_A=4331
PORT_B=4332
"$A" --port $PORT_A --journal-size 0 > /dev/null 2>&1 &
PID_A=$!
"$B" --port $PORT_B --journal-size 0 > /dev/null 2>&1 &
PID_B=$!
trap 'kill $PID_A $PID_B 2>/dev/null || true' EXIT
sleep 1.5
OUT=$(mktemp)
REPORT=$(mktemp)
run() { # name port pid workload args...
  local name=$1 port=$2 pid=$3 workload=$4; shift 4
  timeout 180 "$LOAD" run --target "http://127.0.0.1:$port" --server-pid "$pid" \
    --json "$REPORT" "$@" > /dev/null 2>&1 || true
  python3 - "$REPORT" "$name" "$workload" <<'PY' | tee -a "$OUT"
import json, sys
d = json.load(open(sys.argv[1]))
def get(o, *keys):
    for k in keys:
        if isinstance(o, dict) and k in o:
            return o[k]
    return None
c = d["counters"]; l = get(d, "latencyMs", "latency_ms") or {}; cpu = d.get("cpu") or {}
p = lambda k, q: (l.get(k) or {}).get(q)
print(json.dumps({"build": sys.argv[2], "workload": sys.argv[3],
  "deltasPerSecond": round(get(c, "deltasPerSecond", "deltas_per_s") or 0),
  "loss": c.get("loss"), "ttfdP99": p("ttfd", "p99"), "gapP99": p("gap", "p99"),
  "deltasPerServerCpuSecond": round(get(cpu, "deltasPerServerCore") or 0)}))
PY
}
for _ in $(seq "$ROUNDS"); do
  for s in A B; do
    if [ $s = A ]; then port=$PORT_A pid=$PID_A; else port=$PORT_B pid=$PID_B; fi
    run $s $port $pid fanout --scenario fanout --subscribers 100 --rate 40 --duration 5s --chunks 50 --grace 20s
    run $s $port $pid many-chats --scenario chat --users 1000 --rate 250 --duration 4s --chunks 200 --chunk-delay-ms 20 --grace 20s
  done
done
python3 - "$OUT" <<'PY'
import json, sys, statistics as st
rows = [json.loads(l) for l in open(sys.argv[1])]
def med(b, w, k):
    v = [r[k] for r in rows if r["build"] == b and r["workload"] == w and r[k] is not None]
    return st.median(v) if v else None
print("\n| workload | metric | A (old) | B (new) | B/A |")
print("|---|---|---|---|---|")
for w in ["fanout", "many-chats"]:
    for k in ["deltasPerSecond", "deltasPerServerCpuSecond", "ttfdP99", "gapP99", "loss"]:
        a, b = med("A", w, k), med("B", w, k)
        ratio = f"{b / a:.2f}" if a and b else ""
        print(f"| {w} | {k} | {a} | {b} | {ratio} |")
PY
