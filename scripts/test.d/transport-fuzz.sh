#!/usr/bin/env bash
# Runs every transport decoder fuzzer for a bounded time (FUZZTIME, default 15s each).
set -euo pipefail
cd "$(dirname "$0")/../.."
t="${FUZZTIME:-15s}"
run() { # package fuzzer
  echo "-- fuzz $1 $2 ($t)"
  go test -run '^$' -fuzz "^$2\$" -fuzztime "$t" -parallel 2 "$1"
}
run ./internal/flowbatch FuzzDecode
run ./internal/flowbatch FuzzScan
run ./internal/collector/ingest FuzzSpoolEntry
run ./internal/collector/ingest FuzzPeekExporterID
run ./internal/collector/ingest FuzzJSONBatch
