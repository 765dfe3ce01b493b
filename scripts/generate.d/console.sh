#!/usr/bin/env bash
# Rebuilds the console's assets (web/dist, embedded by the Go package web) from web/src with
# the exact npm packages of web/package-lock.json. The build is deterministic (fixed file
# names, no source maps), so scripts/check-generated fails when the committed dist is stale.
set -euo pipefail
cd "$(dirname "$0")/../../web"
if ! command -v npm >/dev/null; then
  if [ "${CI:-}" = true ]; then echo "npm is missing (.ci/packages/console.txt installs it)" >&2; exit 1; fi
  echo "console.sh: npm missing, console assets not rebuilt" >&2
  exit 0
fi
npm ci --no-audit --no-fund --loglevel=error
npm run --silent build
