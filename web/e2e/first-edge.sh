#!/usr/bin/env bash
# Time from `flowscope standalone` start (real mode: run as root) to the first edge of local
# traffic (curl every second against a local HTTP server) in /api/v1/deps over the last 5 min.
#   sudo web/e2e/first-edge.sh [flowscope binary] [server port]
set -uo pipefail
cd "$(dirname "$0")/../.."
bin=${1:-}
port=${2:-18081}
if [ -z "$bin" ]; then bin=$(mktemp -d)/flowscope; go build -o "$bin" ./cmd/flowscope || exit 1; fi
data=$(mktemp -d)/data
python3 -m http.server $port --bind 127.0.0.1 >/dev/null 2>&1 & srv=$!
start=$(date +%s.%N)
$bin standalone --listen 127.0.0.1:7496 --data-dir $data --ready-file $data.ready --log-level warn > $data.log 2>&1 & fs=$!
while [ ! -s $data.ready ]; do sleep 0.2; done
ready=$(date +%s.%N)
( while true; do curl -s -o /dev/null http://127.0.0.1:$port/; sleep 1; done ) & cl=$!
deadline=$((SECONDS + 240))
while [ $SECONDS -lt $deadline ]; do
  n=$(curl -s "http://127.0.0.1:7496/api/v1/deps?from=-5m&to=now" | python3 -c "import json,sys; d=json.load(sys.stdin); print(sum(1 for e in d['edges'] if e['port']==$port))" 2>/dev/null)
  if [ "${n:-0}" -gt 0 ]; then break; fi
  sleep 1
done
seen=$(date +%s.%N)
curl -s "http://127.0.0.1:7496/api/v1/deps?from=-5m&to=now" | python3 -c "import json,sys; d=json.load(sys.stdin); [print(e['src'],'->',e['dst'],e['port'],e['opened']) for e in d['edges'] if e['port']==$port]"
echo "ready after $(echo "$ready - $start" | bc) s; first edge after $(echo "$seen - $start" | bc) s (start $(date -d @${start%.*} +%T))"
kill $cl $srv; kill $fs; wait $fs 2>/dev/null
rm -rf "$(dirname "$data")"
