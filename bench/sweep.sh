#!/usr/bin/env bash
# proteus-mock and the Node socket.io 4.8 reference server swept side by
# side in one run by proteus-load: offered rate doubling until a step misses
# its SLO attainment, the knee of each, and the generator's own CPU per
# delivered delta at every step. Loopback only; every run is bounded.
# Figures: docs/BENCHMARKS.md, "Sweep".
#
#   bench/sweep.sh [FROM] [TO] [STEP_DURATION]      (default 100 12800 4s)
set -euo pipefail
cd "$(dirname "$0")/.."
FROM=${1:-100}; TO=${2:-12800}; DURATION=${3:-4s}
MOCK_PORT=4331; NODE_PORT=4332
cargo build --release -p proteus-mock -p proteus-load --bins >&2
(cd bench/node-reference && npm ci --no-audit --no-fund >&2)
./target/release/proteus-mock --port $MOCK_PORT --journal-size 0 > /dev/null 2>&1 & MOCK=$!
node bench/node-reference/server.mjs $NODE_PORT > /dev/null 2>&1 & NODE=$!
trap 'kill $MOCK $NODE 2>/dev/null || true' EXIT
sleep 1.5
OUT=$(mktemp -d)
# 200 sockets each in its own chat; replies of 20 unpaced deltas; a step is
# good when 99% of its streams are complete, undamaged and first-delta
# within 50 ms.
for s in mock node; do
  if [ $s = mock ]; then port=$MOCK_PORT pid=$MOCK; else port=$NODE_PORT pid=$NODE; fi
  timeout 600 ./target/release/proteus-load sweep --target "http://127.0.0.1:$port" --server-pid "$pid" \
    --from "$FROM" --to "$TO" --double --duration "$DURATION" --grace 10s \
    --users 200 --chunks 20 --slo 'ttfd<50ms' --json "$OUT/$s.json" --html "bench/results/sweep-$s.html" \
    | sed "s/^/$s: /" || true
done
python3 - "$OUT" <<'PY'
import json, sys
rows = {s: json.load(open(f"{sys.argv[1]}/{s}.json")) for s in ["mock", "node"]}
rates = sorted({st["offeredRate"] for r in rows.values() for st in r["steps"]})
print("\n| offered streams/s | proteus-mock: done/s, ttfd p99 ms, attainment | node 4.8: done/s, ttfd p99 ms, attainment | generator µs/delta (mock, node) |")
print("|---|---|---|---|")
def cell(s, rate):
    st = next((x for x in rows[s]["steps"] if x["offeredRate"] == rate), None)
    if not st: return "(not run: knee passed)", None
    return f'{st["streamsPerSecond"]:.0f}, {st["ttfdMs"]["p99"]}, {st["sloAttainment"]*100:.1f}%{"" if st["good"] else " ✗"}', st["generatorUsPerDelta"]
for rate in rates:
    (m, gm), (n, gn) = cell("mock", rate), cell("node", rate)
    g = ", ".join("-" if v is None else f"{v:.2f}" for v in (gm, gn))
    print(f"| {rate:g} | {m} | {n} | {g} |")
km, kn = rows["mock"]["knee"], rows["node"]["knee"]
print(f"\nknee: proteus-mock {km}/s, node {kn}/s" + (f" ({km / kn:.1f}x)" if km and kn else ""))
PY
