#!/usr/bin/env bash
# Bounded fuzzing of the cgroup path parser (it must never panic on any input).
set -euo pipefail
cd "$(dirname "$0")/../.."
go test -run '^$' -fuzz '^FuzzParseCgroupPath$' -fuzztime 15s ./internal/exporter/identity/
