#!/usr/bin/env bash
# The load generator's own ceiling (docs/BENCHMARKS.md): one connection
# consuming a firehose from the blaster (pre-encoded frames), proteus-load
# and the npm socket.io-client side by side in the same run, alternating.
# Loopback only; every step is bounded in time. Prints one JSON line per run.
#
#   bench/ceiling.sh [ROUNDS]      (default 3)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
PORT=4311
TOKEN="user-3a4d80a9c3cca7ffd1bc341f.ede04d00e4b168bed35d9fcde8c2f92f.00d7fecf89201691f94b01e5b294da65.e7ea4c191b2c9a059ce5658deb7349c26a931ed8b7a04bf0"
cargo build --release -p proteus-load --bins --examples >&2
(cd interop && npm ci --no-audit --no-fund >&2)
./target/release/examples/blaster $PORT > /dev/null 2>&1 &
BLASTER=$!
trap 'kill $BLASTER 2>/dev/null || true' EXIT
sleep 0.5
REPORT=$(mktemp)
for _ in $(seq "$ROUNDS"); do
  # 1,000,000 deltas: 50,000 streams of 20 deltas of 8 bytes.
  timeout 120 ./target/release/proteus-load run --target http://127.0.0.1:$PORT --scenario firehose \
    --subscribers 1 --streams 50000 --chunks 20 --size 8 --rate 0 --grace 60s --threads 1 \
    --server-pid $BLASTER --json "$REPORT" > /dev/null 2>&1
  python3 - "$REPORT" <<'PY'
import json, sys
d = json.load(open(sys.argv[1])); c = d["counters"]; cpu = d["cpu"]
print(json.dumps({"client": "proteus-load", "deltas": c["deltas"], "deltasPerSecond": round(c["deltasPerSecond"]),
  "cpuSeconds": cpu["generatorSeconds"], "deltasPerCpuSecond": round(c["deltas"] / cpu["generatorSeconds"]),
  "loss": c["loss"], "blasterCpuSeconds": cpu["serverSeconds"]}))
PY
  # 200,000 deltas: 10,000 streams of 20 deltas of 8 bytes (it is ~5x slower).
  timeout 120 node interop/firehose-consumer.mjs http://127.0.0.1:$PORT "$TOKEN" 10000 20 8 | python3 -c '
import json, sys
d = json.loads(sys.stdin.read())
print(json.dumps({"client": "socket.io-client", "deltas": d["deltas"], "deltasPerSecond": round(d["deltasPerSecond"]),
  "cpuSeconds": round(d["cpuSeconds"], 2), "deltasPerCpuSecond": round(d["deltas"] / d["cpuSeconds"])}))'
done
