#!/usr/bin/env bash
# Reproduces docs/BENCHMARKS.md: the mock's fan-out and many-chats workloads,
# with the Node socket.io 4.8 reference server in the same run (fan-out) and,
# for many chats, the floor (the blaster answering each send with one
# pre-encoded delta: what no server can beat on this machine).
# Loopback only; every step is bounded in time. Prints one JSON line per run.
#
#   bench/run.sh [ROUNDS]      (default 3 alternating fan-out rounds)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
MOCK_PORT=4301
NODE_PORT=4302
FLOOR_PORT=4303

cargo build --release -p proteus-mock -p proteus-load --bins --examples >&2
(cd bench/node-reference && npm ci --no-audit --no-fund >&2)

./target/release/proteus-mock --port $MOCK_PORT > /dev/null 2>&1 &
MOCK=$!
node bench/node-reference/server.mjs $NODE_PORT > /dev/null 2>&1 &
NODE=$!
# The floor for many chats: answers each send with one pre-encoded delta.
./target/release/examples/blaster $FLOOR_PORT > /dev/null 2>&1 &
FLOOR=$!
trap 'kill $MOCK $NODE $FLOOR 2>/dev/null || true' EXIT
sleep 1.5

BENCH=./target/release/examples/bench
for _ in $(seq "$ROUNDS"); do
  echo "{\"server\":\"proteus-mock\",\"result\":$(timeout 120 $BENCH fanout http://127.0.0.1:$MOCK_PORT 100 3 $MOCK)}"
  echo "{\"server\":\"node-socket.io-4.8\",\"result\":$(timeout 120 $BENCH fanout http://127.0.0.1:$NODE_PORT 100 3 $NODE)}"
done
for _ in 1 2; do
  echo "{\"server\":\"proteus-mock\",\"result\":$(timeout 120 $BENCH many-chats http://127.0.0.1:$MOCK_PORT 1000 $MOCK)}"
  echo "{\"server\":\"floor\",\"result\":$(BENCH_CHUNKS=1 timeout 120 $BENCH many-chats http://127.0.0.1:$FLOOR_PORT 1000 $FLOOR)}"
done
for n in 100 300; do
  echo "{\"server\":\"proteus-mock\",\"result\":$(timeout 120 $BENCH many-chats http://127.0.0.1:$MOCK_PORT $n $MOCK)}"
done
