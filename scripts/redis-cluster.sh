#!/usr/bin/env bash
# A real Redis Cluster on loopback for the tests: 3 masters + 3 replicas of Debian's redis-server on
# 127.0.0.1:$SG_REDIS_CLUSTER_PORT … +5 (default 7001–7006), data under $SG_SERVICES_DIR/redis-cluster.
# Idempotent like scripts/services.sh: `start` reuses nodes that answer, (re)starts the ones that don't — a node
# restarted with its nodes.conf rejoins the cluster, e.g. as a replica after a failover — and creates the cluster
# only when it was never created. It returns once every master has a replica in sync, so the cluster can fail over
# again. A short node timeout makes failovers quick.
#
#   scripts/redis-cluster.sh start [FILE]   # names "redis-cluster" in FILE when it started a node
#   scripts/redis-cluster.sh stop           # shuts every node down and removes the data directory
#   scripts/redis-cluster.sh env            # SG_REDIS_CLUSTER=127.0.0.1:7001,…
set -euo pipefail

DIR="${SG_SERVICES_DIR:-/tmp/stepguard-services}/redis-cluster"
BASE="${SG_REDIS_CLUSTER_PORT:-7001}"
PORTS=()
for i in 0 1 2 3 4 5; do PORTS+=($((BASE + i))); done
NODE_TIMEOUT_MS="${SG_REDIS_CLUSTER_NODE_TIMEOUT_MS:-2000}"

log() { echo "[redis-cluster] $*" >&2; }
cli() { local port="$1"; shift; redis-cli -h 127.0.0.1 -p "$port" "$@"; }
answers() { cli "$1" ping 2>/dev/null | grep -q PONG; }
state_ok() { cli "$1" cluster info 2>/dev/null | grep -q '^cluster_state:ok'; }
known_nodes() { cli "$1" cluster info 2>/dev/null | sed -n 's/^cluster_known_nodes:\([0-9]*\).*/\1/p'; }

start_node() {
  local port="$1"
  mkdir -p "$DIR/$port"
  redis-server --port "$port" --bind 127.0.0.1 --cluster-enabled yes --cluster-config-file "$DIR/$port/nodes.conf" \
    --cluster-node-timeout "$NODE_TIMEOUT_MS" --save '' --appendonly no --daemonize yes --dir "$DIR/$port" \
    --pidfile "$DIR/$port/redis.pid" --logfile "$DIR/$port/redis.log" >/dev/null
}

wait_until() { # $1 = description, rest = command
  local what="$1"; shift
  for _ in $(seq 1 150); do if "$@"; then return 0; fi; sleep 0.2; done
  log "$what did not happen in time"; return 1
}

all_ok() { for p in "${PORTS[@]}"; do state_ok "$p" || return 1; done; }

# A replica can only be promoted after it has synchronised with its master: one that never did refuses to fail over
# ("disconnected from master for longer than allowed"). A node restarted after a failover rejoins as a replica and
# syncs a few seconds later (diskless sync waits for more replicas first), so "state ok" alone is not ready yet.
synced() {
  local info
  info="$(cli "$1" info replication 2>/dev/null)" || return 1
  case "$info" in
    *role:slave*) [[ "$info" == *master_link_status:up* ]] ;;
    *) [[ "$info" != *connected_slaves:0* ]] ;;
  esac
}
all_synced() { for p in "${PORTS[@]}"; do synced "$p" || return 1; done; }

start() {
  local started_file="${1:-}" started=0
  command -v redis-server >/dev/null 2>&1 || { log "redis-server not found (run: scripts/services.sh install)"; return 1; }
  mkdir -p "$DIR"
  for p in "${PORTS[@]}"; do
    if answers "$p"; then continue; fi
    start_node "$p"; started=1
  done
  for p in "${PORTS[@]}"; do wait_until "redis node $p answering" answers "$p"; done
  if [ "$(known_nodes "${PORTS[0]}")" != "6" ]; then
    local hosts=(); for p in "${PORTS[@]}"; do hosts+=("127.0.0.1:$p"); done
    redis-cli --cluster create "${hosts[@]}" --cluster-replicas 1 --cluster-yes >/dev/null
  fi
  wait_until "cluster state ok on every node" all_ok
  wait_until "every master with a synchronised replica" all_synced
  if [ "$started" = 1 ] && [ -n "$started_file" ]; then echo redis-cluster >> "$started_file"; fi
  log "redis cluster up on 127.0.0.1:${PORTS[0]}–${PORTS[5]}"
}

stop() {
  for p in "${PORTS[@]}"; do cli "$p" shutdown nosave >/dev/null 2>&1 || true; done
  for p in "${PORTS[@]}"; do
    for _ in $(seq 1 50); do answers "$p" || break; sleep 0.1; done
  done
  rm -rf "$DIR"
  log "stopped"
}

env_vars() {
  local list=""; for p in "${PORTS[@]}"; do list="${list:+$list,}127.0.0.1:$p"; done
  echo "SG_REDIS_CLUSTER=$list"
}

case "${1:-}" in
  start) start "${2:-}" ;;
  stop) stop ;;
  env) env_vars ;;
  *) echo "usage: $0 start [FILE]|stop|env" >&2; exit 2 ;;
esac
