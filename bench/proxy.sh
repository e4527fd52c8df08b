#!/usr/bin/env bash
# What the validating proxy costs: the same load against a release mock
# directly and through `proteus-conformance proxy` (validation on, no
# capture) in front of a second, identical mock, alternating in each round:
#   chat     - a paced chat run: ack and TTFD p50/p99, direct vs proxied
#   firehose - unpaced deltas to 10 subscribers: deltas/s the proxy relays
#              (every frame parsed, schema-checked, stream-checked)
# Loopback only; every run is bounded. Figures: docs/BENCHMARKS.md, "Proxy".
#
#   bench/proxy.sh [ROUNDS]      (default 3)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
cargo build --release -p proteus-mock -p proteus-load -p proteus-conformance --bins >&2
MOCK=target/release/proteus-mock LOAD=target/release/proteus-load
$MOCK --port 4361 --journal-size 0 > /dev/null 2>&1 & A=$!
$MOCK --port 4362 --journal-size 0 > /dev/null 2>&1 & B=$!
target/release/proteus-conformance proxy --listen 127.0.0.1:4363 --upstream http://127.0.0.1:4362 > /tmp/proxy-bench.log 2>&1 & P=$!
trap 'kill $A $B 2>/dev/null; kill -INT $P 2>/dev/null || true' EXIT
sleep 1.5
OUT=$(mktemp); REPORT=$(mktemp)
for _ in $(seq "$ROUNDS"); do
  for path in direct proxied; do
    case $path in direct) port=4361;; proxied) port=4363;; esac
    timeout 120 $LOAD run --target "http://127.0.0.1:$port" --users 20 --rate 100 --duration 10s \
      --chunks 20 --chunk-delay-ms 5 --json "$REPORT" > /dev/null 2>&1 || true
    python3 - "$REPORT" "$path" chat <<'PY' | tee -a "$OUT"
import json, sys
d = json.load(open(sys.argv[1])); l = d["latencyMs"]; c = d["counters"]
print(json.dumps({"path": sys.argv[2], "workload": sys.argv[3], "ackP50": l["ack"]["p50"], "ackP99": l["ack"]["p99"],
  "ttfdP50": l["ttfd"]["p50"], "ttfdP99": l["ttfd"]["p99"], "deltasPerSecond": round(c["deltasPerSecond"]),
  "missing": c["missingSegments"]}))
PY
    timeout 120 $LOAD run --target "http://127.0.0.1:$port" --scenario firehose --subscribers 10 \
      --streams 1000 --chunks 50 --size 16 --rate 0 --grace 30s --json "$REPORT" > /dev/null 2>&1 || true
    python3 - "$REPORT" "$path" firehose <<'PY' | tee -a "$OUT"
import json, sys
d = json.load(open(sys.argv[1])); c = d["counters"]
print(json.dumps({"path": sys.argv[2], "workload": sys.argv[3], "deltasPerSecond": round(c["deltasPerSecond"]),
  "missing": c["missingSegments"]}))
PY
  done
done
python3 - "$OUT" <<'PY'
import json, sys, statistics as st
rows = [json.loads(l) for l in open(sys.argv[1])]
def med(path, wl, k):
    v = [r[k] for r in rows if r["path"] == path and r["workload"] == wl and r.get(k) is not None]
    return st.median(v) if v else float("nan")
print("\n| path | ack p50 ms | ack p99 ms | TTFD p50 ms | TTFD p99 ms | firehose deltas/s | lost |")
print("|---|---|---|---|---|---|---|")
for p in ["direct", "proxied"]:
    lost = sum(r["missing"] for r in rows if r["path"] == p)
    print(f'| {p} | {med(p,"chat","ackP50"):.2f} | {med(p,"chat","ackP99"):.2f} | {med(p,"chat","ttfdP50"):.2f} | {med(p,"chat","ttfdP99"):.2f} | {med(p,"firehose","deltasPerSecond"):,.0f} | {lost} |')
print(f'\nadded at p50: ack {med("proxied","chat","ackP50") - med("direct","chat","ackP50"):.2f} ms, TTFD {med("proxied","chat","ttfdP50") - med("direct","chat","ttfdP50"):.2f} ms; '
      f'relayed throughput {med("proxied","firehose","deltasPerSecond") / med("direct","firehose","deltasPerSecond"):.2f} of direct')
PY
# The workloads are clean: any violation the proxy printed is its own fault
# (one stream checker for all connections once reported every fan-out copy
# as a duplicate, and the figures hid it).
n=$(grep -c '^VIOLATION' /tmp/proxy-bench.log || true)
echo "violations the proxy reported: $n (expected 0; /tmp/proxy-bench.log)"
[ "$n" = 0 ]
