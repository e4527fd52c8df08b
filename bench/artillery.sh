#!/usr/bin/env bash
# Artillery against proteus-load on the one thing Artillery's socket.io
# engine measures: emit → ack latency at a fixed arrival rate (50/s for 5 s,
# 250 emits), against the same mock, alternating, each under /usr/bin/time.
# Loopback only; every run bounded. Prints one JSON line per run.
#
#   bench/artillery.sh [ROUNDS]      (default 3)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
PORT=4341
cargo build --release -p mock-server -p load --bins >&2
[ -d bench/artillery/node_modules ] || (cd bench/artillery && npm install --ignore-scripts --no-audit --no-fund >&2)
./target/release/proteus-mock --port $PORT --journal-size 0 > /dev/null 2>&1 &
MOCK=$!
trap 'kill $MOCK 2>/dev/null || true' EXIT
sleep 1
T=$(mktemp)
for _ in $(seq "$ROUNDS"); do
  sed 's/duration: 10/duration: 5/' bench/artillery/ack.yml > "$T.yml"
  TARGET=http://127.0.0.1:$PORT timeout 60 /usr/bin/time -f '%U %S' -o "$T.time" \
    bench/artillery/node_modules/.bin/artillery run -q -o "$T.art.json" "$T.yml" > /dev/null 2>&1 || true
  python3 - "$T.art.json" "$T.time" <<'PY'
import json, sys
a = json.load(open(sys.argv[1]))["aggregate"]; u, s = map(float, open(sys.argv[2]).read().split()[-2:])
l = a["latency"]
print(json.dumps({"client": "artillery-1.7.9", "emits": a["scenariosCompleted"], "launched": a["scenariosCreated"],
  "ackP50": l["median"], "ackP95": l["p95"], "ackP99": l["p99"], "cpuSeconds": round(u + s, 2)}))
PY
  timeout 60 /usr/bin/time -f '%U %S' -o "$T.time" ./target/release/proteus-load run --target http://127.0.0.1:$PORT \
    --users 50 --rate 50 --duration 5s --chunks 1 --threads 1 --json "$T.pl.json" > /dev/null 2>&1 || true
  python3 - "$T.pl.json" "$T.time" <<'PY'
import json, sys
d = json.load(open(sys.argv[1])); u, s = map(float, open(sys.argv[2]).read().split()[-2:]); a = d["latencyMs"]["ack"]
print(json.dumps({"client": "proteus-load", "emits": a["count"], "ackP50": a["p50"], "ackP95": None, "ackP90": a["p90"],
  "ackP99": a["p99"], "cpuSeconds": round(u + s, 2)}))
PY
done
