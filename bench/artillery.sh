#!/usr/bin/env bash
# Artillery against proteus-load on the one thing Artillery's socket.io
# engine measures: emit → ack latency at a fixed arrival rate. Same workload
# for both (bench/artillery/ack.yml): 50 users, each with its socket open and
# its own chat with the Streamer agent, one `message:send` per user per
# second for 5 s (250 emits at 50/s), each client under /usr/bin/time.
# Two mocks: one as is, one with `--fault ack-late:10` (every ack held 10 ms
# by the server), so both tools also measure a latency the server is known to
# add. With tcpdump (and the right to capture on lo), each run is also timed
# on the wire (bench/wire-ack.py): the emit and the ack packets passing the
# loopback interface, which no client can beat, so each tool's own time shows.
# Alternating rounds; loopback only; every run bounded. One JSON line per run.
#
#   bench/artillery.sh [ROUNDS]      (default 3)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
PORT=4341
LATE_PORT=4342
cargo build --release -p proteus-mock -p proteus-load --bins >&2
[ -d bench/artillery/node_modules ] || (cd bench/artillery && npm install --ignore-scripts --no-audit --no-fund >&2)
./target/release/proteus-mock --port $PORT --journal-size 0 > /dev/null 2>&1 &
MOCK=$!
./target/release/proteus-mock --port $LATE_PORT --journal-size 0 --fault ack-late:10 > /dev/null 2>&1 &
LATE=$!
trap 'kill $MOCK $LATE 2>/dev/null || true' EXIT
sleep 1
T=$(mktemp)
# wire PORT: the emit -> ack latency of the last captured run, or null.
CAPTURE=""
capture() {
  if command -v tcpdump > /dev/null && [ "$(id -u)" = 0 ]; then
    # A large buffer (no drops when 50 sockets connect at once) and no
    # --immediate-mode (it drops under that burst); packets are handed over
    # in blocks, so wait() gives the last block time to reach the file.
    tcpdump -i lo -B 65536 -s 0 -w "$T.pcap" tcp port "$1" > /dev/null 2>&1 &
    CAPTURE=$!
    sleep 1
  fi
}
wire() {
  if [ -n "$CAPTURE" ]; then
    sleep 2; kill "$CAPTURE"; wait "$CAPTURE" 2>/dev/null || true; CAPTURE=""
    python3 bench/wire-ack.py "$T.pcap" "$1"
  else
    echo null
  fi
}
for _ in $(seq "$ROUNDS"); do
  for p in $PORT $LATE_PORT; do
    server=$([ "$p" = "$PORT" ] && echo "mock" || echo "mock+ack-late:10")
    capture $p
    TARGET=http://127.0.0.1:$p timeout 60 /usr/bin/time -f '%U %S' -o "$T.time" \
      bench/artillery/node_modules/.bin/artillery run -q -o "$T.art.json" bench/artillery/ack.yml > /dev/null 2>&1 || true
    python3 - "$T.art.json" "$T.time" "$server" "$(wire $p)" <<'PY'
import json, sys
a = json.load(open(sys.argv[1]))["aggregate"]; u, s = map(float, open(sys.argv[2]).read().split()[-2:])
l = a["latency"]
print(json.dumps({"server": sys.argv[3], "client": "artillery-1.7.9", "emits": a["codes"].get("101", 0), "errors": a["errors"],
  "ackP50": l["median"], "ackP95": l["p95"], "ackP99": l["p99"], "ackMax": l["max"], "cpuSeconds": round(u + s, 2),
  "wire": json.loads(sys.argv[4])}))
PY
    capture $p
    timeout 60 /usr/bin/time -f '%U %S' -o "$T.time" ./target/release/proteus-load run --target http://127.0.0.1:$p \
      --users 50 --rate 50 --duration 5s --chunks 1 --threads 1 --json "$T.pl.json" > /dev/null 2>&1 || true
    python3 - "$T.pl.json" "$T.time" "$server" "$(wire $p)" <<'PY'
import json, sys
d = json.load(open(sys.argv[1])); u, s = map(float, open(sys.argv[2]).read().split()[-2:]); a = d["latencyMs"]["ack"]
print(json.dumps({"server": sys.argv[3], "client": "proteus-load", "emits": a["count"], "errors": d["counters"]["errors"],
  "ackP50": a["p50"], "ackP90": a["p90"], "ackP99": a["p99"], "ackMax": a["max"], "cpuSeconds": round(u + s, 2),
  "wire": json.loads(sys.argv[4])}))
PY
  done
done
