#!/usr/bin/env bash
# A bounded soak of proteus-mock (not in CI): mixed traffic for DURATION
# seconds with faults switched on and off and periodic resets, then a check
# that what the server holds came back down: resident memory, open file
# descriptors, runtime tasks, TCP connections and the journal. Loopback only;
# every step is bounded and the whole run stops by itself.
#
#   bench/soak.sh [DURATION_S] [PORT]        (default 1800 4390)
#   MOCK=... LOAD=... to use other builds (default target/release/*)
#
# Each round (about 40 s): chat streams (20 sockets), a fan-out (50
# subscribers), a Thenvoi run (200 agents), one stream fault and one REST
# fault switched on for the round and off after it, malformed and oversized
# input; a reset every third round. A sample of /__admin/stats and /proc
# after every round goes to bench/results/soak-<date>.csv; the summary
# compares the first sample after the warm-up round with the last one,
# taken after a final reset and 5 s of quiet. Figures: docs/BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-1800}; PORT=${2:-4390}
MOCK=${MOCK:-target/release/proteus-mock}
LOAD=${LOAD:-target/release/proteus-load}
[ -x "$MOCK" ] && [ -x "$LOAD" ] || cargo build --release -p proteus-mock -p proteus-load
URL=http://127.0.0.1:$PORT
mkdir -p bench/results
CSV=bench/results/soak-$(date -u +%Y%m%dT%H%M%SZ).csv
LOG=$(mktemp)
"$MOCK" --port "$PORT" --journal-size 10000 > "$LOG" 2>&1 & MPID=$!
trap 'kill $MPID 2>/dev/null || true' EXIT
for _ in $(seq 50); do curl -sf "$URL/__admin/stats" > /dev/null && break; sleep 0.2; done

sample() { # round label
  curl -sf --max-time 10 "$URL/__admin/stats" | python3 -c '
import json, os, sys
d = json.load(sys.stdin)["data"]; pid = sys.argv[3]
fds = len(os.listdir(f"/proc/{pid}/fd"))
print(",".join(str(x) for x in [sys.argv[1], sys.argv[2], d["process"]["rssBytes"] // 1048576, fds,
  d["process"]["runtimeTasks"], d["internal"]["tcpConnections"], d["journalEntries"],
  d["sockets"], d["activeReplies"], d["slowConsumersDisconnected"]]))' "$1" "$2" "$MPID" >> "$CSV"
}
echo "round,label,rssMb,fds,tasks,tcpConnections,journalEntries,sockets,activeReplies,slowConsumersCut" > "$CSV"

STREAM_FAULTS=(drop-delta:3 duplicate-delta:2 reorder-deltas:4 omit-done delay-first-delta:200
  stall-stream:5:300 wrong-content:2 disconnect-mid-stream:10 plain-message-for-stream double-done)
REST_FAULTS=(rest-latency:50 rest-status:503:/api/chats page-overlap page-skip ignore-cursor)
load() { timeout 120 "$LOAD" run --target "$URL" --grace 5s "$@" > /dev/null 2>&1 || true; }
started=$(date +%s); round=0
while [ $(( $(date +%s) - started )) -lt "$DURATION" ]; do
  round=$((round + 1))
  sf=${STREAM_FAULTS[$((round % ${#STREAM_FAULTS[@]}))]}
  rf=${REST_FAULTS[$((round % ${#REST_FAULTS[@]}))]}
  ids=()
  for f in "$sf" "$rf"; do
    id=$(curl -sf --max-time 5 -X POST "$URL/__admin/faults" -H 'content-type: application/json' \
      -d "{\"fault\": \"$f\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["id"])' || true)
    [ -n "$id" ] && ids+=("$id")
  done
  load --scenario chat --users 20 --rate 20 --chunks 50 --duration 10s
  load --scenario fanout --subscribers 50 --rate 5 --chunks 100 --duration 8s
  load --scenario thenvoi --agents 200 --mentions 5 --agents-per-room 50 --rate 200 --duration 8s
  # Careless input: oversized, malformed, half-sent.
  head -c 2000000 /dev/zero | tr '\0' x | curl -s --max-time 5 -o /dev/null -X POST "$URL/api/chats" \
    -H 'content-type: application/json' --data-binary @- || true
  curl -s --max-time 5 -o /dev/null "$URL/api/chats/%ff" || true
  timeout 3 bash -c "exec 3<>/dev/tcp/127.0.0.1/$PORT; printf 'GET /api/chats HTTP/1.1\r\nHost: x\r\nX-Slow: ' >&3; sleep 2" || true
  for id in "${ids[@]}"; do curl -sf --max-time 5 -o /dev/null -X DELETE "$URL/__admin/faults/$id" || true; done
  if [ $((round % 3)) -eq 0 ]; then curl -sf --max-time 10 -o /dev/null -X POST "$URL/__admin/reset"; fi
  sample "$round" "$sf+$rf"
  echo "round $round ($(( $(date +%s) - started )) s): $(tail -1 "$CSV")"
done
curl -sf --max-time 10 -o /dev/null -X POST "$URL/__admin/reset"
sleep 5
sample end after-reset
kill -TERM $MPID; wait $MPID 2>/dev/null || true
python3 - "$CSV" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
first, last = rows[0], rows[-1]
peak = {k: max(int(r[k]) for r in rows) for k in ["rssMb", "fds", "tasks", "journalEntries"]}
print(f"\n{len(rows) - 1} rounds; samples in {sys.argv[1]}")
print("| measure | after round 1 | peak | end (after a reset, 5 s quiet) |")
print("|---|---|---|---|")
for k in ["rssMb", "fds", "tasks", "tcpConnections", "journalEntries", "sockets", "activeReplies"]:
    print(f"| {k} | {first[k]} | {peak.get(k, '')} | {last[k]} |")
flat = (int(last["rssMb"]) <= 2 * int(first["rssMb"]) + 32 and int(last["fds"]) <= int(first["fds"]) + 4
        and int(last["tasks"]) <= int(first["tasks"]) + 4 and int(last["activeReplies"]) == 0)
print("flat" if flat else "NOT FLAT: see the samples")
sys.exit(0 if flat else 1)
PY
