#!/usr/bin/env bash
# The Thenvoi load scenario against proteus-mock and the independent Node
# implementation (interop/thenvoi-reference.mjs), side by side in one run,
# alternating in each round, driven by the same proteus-load. Loopback only;
# every run is bounded. Figures go to docs/BENCHMARKS.md.
#
#   bench/thenvoi.sh [ROUNDS] [RATE] [AGENTS] [DURATION]   (default 2 2000 1000 5s)
#   LOAD=... MOCK=... to use other builds (default target/release/*)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-2}; RATE=${2:-2000}; AGENTS=${3:-1000}; DURATION=${4:-5s}
LOAD=${LOAD:-target/release/proteus-load}
MOCK=${MOCK:-target/release/proteus-mock}
OUT=$(mktemp); REPORT=$(mktemp)
run() { # name url pid [profile file]
  local name=$1 url=$2 pid=$3 profile=()
  [ -n "${4:-}" ] && profile=(--profile "$4")
  rm -f "$REPORT"
  timeout 300 "$LOAD" run --target "$url" --server-pid "$pid" --json "$REPORT" "${profile[@]}" \
    --scenario thenvoi --agents "$AGENTS" --mentions 10 --agents-per-room 100 \
    --rate "$RATE" --duration "$DURATION" --grace 20s $EXTRA > /tmp/thenvoi-load-$name.log 2>&1 || true
  [ -s "$REPORT" ] || { echo "$name: no report; see /tmp/thenvoi-load-$name.log" >&2; return; }
  local rss; rss=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
  python3 - "$REPORT" "$name" "$rss" <<'PY' | tee -a "$OUT"
import json, sys
d = json.load(open(sys.argv[1])); c = d["counters"]; l = d["latencyMs"]; cpu = d.get("cpu") or {}
srv = cpu.get("serverSeconds") or 0
print(json.dumps({"server": sys.argv[2], "sent": c["started"], "deliveries": c["deliveries"],
  "deliveriesPerSecond": round(c["deliveriesPerSecond"]), "missing": c["loss"],
  "misdeliveries": c["misdeliveries"], "errors": c["errors"],
  "deliveryP50": (l.get("delivery") or {}).get("p50"), "deliveryP99": (l.get("delivery") or {}).get("p99"),
  "claimsPerSecond": round(c["claimsPerSecond"], 1), "claimP99": (l.get("claim") or {}).get("p99"),
  "serverCpuSeconds": round(srv, 2), "deliveriesPerServerCpuSecond": round(c["deliveries"] / srv) if srv else None,
  "deliveriesPerServerCpuSecondAfterSetup": round(c["deliveries"] / cpu["serverSecondsMeasured"]) if cpu.get("serverSecondsMeasured") else None,
  "serverPeakRssMb": round(int(sys.argv[3]) / 1024)}))
PY
}
EXTRA=${EXTRA:-}
for _ in $(seq "$ROUNDS"); do
  "$MOCK" --port 4341 --journal-size 0 > /dev/null 2>&1 & MPID=$!
  node interop/thenvoi-reference.mjs 4342 > /tmp/thenvoi-ref.json 2>/dev/null & NPID=$!
  sleep 1.5
  run mock http://127.0.0.1:4341 $MPID
  python3 -c 'import json; print(json.dumps(json.load(open("/tmp/thenvoi-ref.json"))["profile"]))' > /tmp/thenvoi-ref-profile.json
  run node http://127.0.0.1:4342 $NPID /tmp/thenvoi-ref-profile.json
  kill $MPID $NPID 2>/dev/null || true; wait 2>/dev/null || true
done
python3 - "$OUT" <<'PY'
import json, sys, statistics as st
rows = [json.loads(l) for l in open(sys.argv[1])]
keys = ["deliveriesPerSecond", "deliveryP50", "deliveryP99", "missing", "misdeliveries", "errors",
        "claimsPerSecond", "deliveriesPerServerCpuSecond", "deliveriesPerServerCpuSecondAfterSetup",
        "serverPeakRssMb"]
def med(s, k):
    v = [r[k] for r in rows if r["server"] == s and r[k] is not None]
    return st.median(v) if v else None
print("\n| metric | proteus-mock | Node reference | mock/node |")
print("|---|---|---|---|")
for k in keys:
    a, b = med("mock", k), med("node", k)
    ratio = f"{a / b:.2f}" if a and b else ""
    print(f"| {k} | {a} | {b} | {ratio} |")
PY
