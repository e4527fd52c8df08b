#!/usr/bin/env bash
# What the inspector page costs a busy mock, and what the journal costs:
# three release mocks side by side in one run, alternating in each round,
# each given the same firehose (unpaced deltas to 10 subscribers):
#   page    - journal on, the inspector page open in headless Chromium
#   journal - journal on, no page
#   off     - --journal-size 0
# Loopback only; every run is bounded. Figures: docs/BENCHMARKS.md,
# "Inspector".
#
#   bench/inspector.sh [ROUNDS] [STREAMS] [CHUNKS]   (default 3 1000 50)
# (1000 streams of 50 deltas of 16 bytes: small deltas, so the per-emission
# costs show; 100 x 1000 gives large deltas, whose bytes dominate)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}; STREAMS=${2:-1000}; CHUNKS=${3:-50}
cargo build --release -p proteus-mock -p proteus-load --bins >&2
MOCK=target/release/proteus-mock LOAD=target/release/proteus-load
$MOCK --port 4351 > /dev/null 2>&1 & A=$!
$MOCK --port 4352 > /dev/null 2>&1 & B=$!
$MOCK --port 4353 --journal-size 0 > /dev/null 2>&1 & C=$!
sleep 1.5
interop/.venv/bin/python - http://127.0.0.1:4351/__admin/ui <<'PY' &
import sys, time
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
o = webdriver.ChromeOptions()
for a in ["--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,800"]:
    o.add_argument(a)
o.binary_location = "/usr/bin/chromium"
d = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=o)
d.get(sys.argv[1])
time.sleep(600)
PY
PAGE=$!
trap 'kill $A $B $C $PAGE 2>/dev/null || true; pkill -f "chromium.*4351" 2>/dev/null || true' EXIT
sleep 4
OUT=$(mktemp); REPORT=$(mktemp)
for _ in $(seq "$ROUNDS"); do
  for s in page journal off; do
    case $s in page) port=4351 pid=$A;; journal) port=4352 pid=$B;; off) port=4353 pid=$C;; esac
    timeout 120 $LOAD run --target "http://127.0.0.1:$port" --server-pid $pid --scenario firehose \
      --subscribers 10 --streams "$STREAMS" --chunks "$CHUNKS" --size 16 --rate 0 --grace 30s --json "$REPORT" > /dev/null 2>&1 || true
    python3 - "$REPORT" "$s" <<'PY' | tee -a "$OUT"
import json, sys
d = json.load(open(sys.argv[1])); c = d["counters"]; cpu = d.get("cpu") or {}
print(json.dumps({"mock": sys.argv[2], "deltasPerSecond": round(c["deltasPerSecond"]), "missing": c["missingSegments"],
  "deltasPerServerCpuSecond": round(cpu.get("deltasPerServerCore") or 0)}))
PY
  done
done
python3 - "$OUT" <<'PY'
import json, sys, statistics as st
rows = [json.loads(l) for l in open(sys.argv[1])]
med = lambda s, k: st.median([r[k] for r in rows if r["mock"] == s])
print("\n| mock | deltas/s (median) | deltas per server CPU-second | vs journal on, no page |")
print("|---|---|---|---|")
for s in ["page", "journal", "off"]:
    print(f'| {s} | {med(s, "deltasPerSecond"):,} | {med(s, "deltasPerServerCpuSecond"):,} | {med(s, "deltasPerSecond") / med("journal", "deltasPerSecond"):.3f} |')
PY
