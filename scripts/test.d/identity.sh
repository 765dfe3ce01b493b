#!/usr/bin/env bash
# Bounded fuzzing of the cgroup path parser (it must never panic on any input).
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/lib/fuzz.sh
fuzz ./internal/exporter/identity/ FuzzParseCgroupPath 15s
