#!/usr/bin/env bash
# The main job: sets everything up on a fresh machine (npm packages, build, PostgreSQL on loopback), then
# runs the bank example under the agent and walks through a blocked SQL injection and a step-up transfer.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d node_modules ] || npm ci --no-audit --no-fund
npm run build --silent
if [ "$(id -u)" = 0 ]; then bash scripts/services.sh install; fi
bash scripts/services.sh start
exec node scripts/demo.mjs "$@"
