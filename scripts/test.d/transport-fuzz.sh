#!/usr/bin/env bash
# Runs every transport decoder fuzzer for a bounded time (FUZZTIME, default 15s each).
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/lib/fuzz.sh
fuzz ./internal/flowbatch FuzzDecode
fuzz ./internal/flowbatch FuzzScan
fuzz ./internal/flowbatch FuzzUnmarshal
fuzz ./internal/collector/ingest FuzzSpoolEntry
fuzz ./internal/collector/ingest FuzzPeekExporterID
fuzz ./internal/collector/ingest FuzzJSONBatch
