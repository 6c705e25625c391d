#!/usr/bin/env bash
# Starts/stops the loopback services the tests and the demo use: PostgreSQL, MariaDB, Redis and a Redis Cluster
# (scripts/redis-cluster.sh: 3 masters + 3 replicas on $SG_REDIS_CLUSTER_PORT…+5, default 7001–7006), each with a
# throwaway data directory under $SG_SERVICES_DIR (default: /tmp/stepguard-services — outside the checkout,
# because the service users must reach it and a checkout may sit in a 0700 home). Idempotent: `start` reuses
# services that already answer, wherever they were started from. Statement logs are on, so tests can check
# what the databases saw; `env` asks the running servers where their logs are.
#
#   scripts/services.sh install          # apt-get install whatever is missing (needs root)
#   scripts/services.sh start [FILE]     # start all of them on 127.0.0.1; names the ones it started in FILE
#   scripts/services.sh stop [NAME…]     # stop all, or only the named ones (postgres mariadb redis redis-cluster)
#   scripts/services.sh env              # print the connection variables
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="${SG_SERVICES_DIR:-/tmp/stepguard-services}"
STARTED_FILE=""
PG_PORT="${SG_PG_PORT:-54329}"
MYSQL_PORT="${SG_MYSQL_PORT:-33069}"
REDIS_PORT="${SG_REDIS_PORT:-63799}"

log() { echo "[services] $*" >&2; }
started() { [ -z "$STARTED_FILE" ] || echo "$1" >> "$STARTED_FILE"; }

prepare_dir() { # the data directories must be reachable by the postgres and mysql users
  mkdir -p "$DIR"; chmod 755 "$DIR"
  if [ "$(id -u)" = 0 ] && id postgres >/dev/null 2>&1 && ! runuser -u postgres -- test -x "$DIR"; then
    log "$DIR is not reachable by the postgres user (a parent directory is not world-searchable);"
    log "set SG_SERVICES_DIR to a directory under /tmp or /var/tmp and run again"
    return 1
  fi
}

pg_bin() {
  if command -v initdb >/dev/null 2>&1; then dirname "$(readlink -f "$(command -v initdb)")"; return; fi
  local d; d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)
  [ -n "$d" ] && echo "$d"
}

as_user() { # run as an unprivileged user when we are root (initdb and mariadbd refuse root)
  local user="$1"; shift
  if [ "$(id -u)" = 0 ]; then runuser -u "$user" -- "$@"; else "$@"; fi
}

install() {
  local need=()
  [ -n "$(pg_bin)" ] || need+=(postgresql)
  command -v mariadbd >/dev/null 2>&1 || command -v mysqld >/dev/null 2>&1 || need+=(mariadb-server)
  command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
  command -v ip >/dev/null 2>&1 || need+=(iproute2) # network namespaces: the SSRF tests' public test host
  command -v chromium >/dev/null 2>&1 || need+=(chromium) # the dashboard test drives Debian's Chromium (playwright-core)
  # libxmljs2 (the XXE end-to-end test) is a native addon that node-gyp compiles on install
  { command -v make >/dev/null 2>&1 && command -v g++ >/dev/null 2>&1 && command -v python3 >/dev/null 2>&1; } || need+=(make g++ python3)
  if [ ${#need[@]} -eq 0 ]; then log "all services installed"; return; fi
  log "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # policy-rc.d keeps the packages from starting system-wide daemons we don't use
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
}

wait_for() { # $1 = description, rest = command that succeeds when ready
  local what="$1"; shift
  for _ in $(seq 1 100); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  log "$what did not become ready"; return 1
}

start_pg() {
  local bin; bin="$(pg_bin)"
  [ -n "$bin" ] || { log "PostgreSQL binaries not found (run: $0 install)"; return 1; }
  local data="$DIR/pg"
  if "$bin/pg_isready" -h 127.0.0.1 -p "$PG_PORT" >/dev/null 2>&1; then log "postgres already up on $PG_PORT"; return; fi
  prepare_dir
  if [ ! -f "$data/PG_VERSION" ]; then
    rm -rf "$data"; mkdir -p "$data"; chown postgres "$data" 2>/dev/null || true
    as_user postgres "$bin/initdb" -D "$data" -U postgres --auth=trust -E UTF8 >/dev/null
  fi
  as_user postgres "$bin/pg_ctl" -D "$data" -l "$data/server.log" -w -o \
    "-c listen_addresses=127.0.0.1 -c port=$PG_PORT -c unix_socket_directories=$data -c log_statement=all -c log_min_messages=warning -c max_connections=200 -c fsync=off" start >/dev/null
  wait_for postgres "$bin/pg_isready" -h 127.0.0.1 -p "$PG_PORT"
  "$bin/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='stepguard'" | grep -q 1 ||
    "$bin/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -qc "CREATE DATABASE stepguard" >/dev/null
  started postgres
  log "postgres up on 127.0.0.1:$PG_PORT (log: $data/server.log)"
}

start_mysql() {
  local server; server="$(command -v mariadbd || command -v mysqld || true)"
  [ -n "$server" ] || { log "MariaDB not found (run: $0 install)"; return 1; }
  local data="$DIR/mysql"
  local client; client="$(command -v mariadb || command -v mysql)"
  if "$client" -h 127.0.0.1 -P "$MYSQL_PORT" -ustepguard -pstepguard -e 'SELECT 1' stepguard >/dev/null 2>&1; then log "mariadb already up on $MYSQL_PORT"; return; fi
  prepare_dir
  if [ ! -d "$data/mysql" ]; then
    rm -rf "$data"; mkdir -p "$data"; chown mysql "$data" 2>/dev/null || true
    as_user mysql "$(command -v mariadb-install-db || command -v mysql_install_db)" --no-defaults --datadir="$data" \
      --auth-root-authentication-method=normal --skip-test-db >/dev/null 2>&1
  fi
  as_user mysql "$server" --no-defaults --datadir="$data" --socket="$data/mysqld.sock" --port="$MYSQL_PORT" \
    --bind-address=127.0.0.1 --pid-file="$data/mysqld.pid" --log-error="$data/error.log" \
    --general-log=1 --general-log-file="$data/general.log" --skip-name-resolve --max-connections=300 \
    --innodb-flush-log-at-trx-commit=0 >/dev/null 2>&1 &
  wait_for mariadb "$client" -S "$data/mysqld.sock" -uroot -e 'SELECT 1'
  "$client" -S "$data/mysqld.sock" -uroot -e "
    CREATE DATABASE IF NOT EXISTS stepguard;
    CREATE USER IF NOT EXISTS 'stepguard'@'127.0.0.1' IDENTIFIED BY 'stepguard';
    GRANT ALL ON stepguard.* TO 'stepguard'@'127.0.0.1';
    GRANT SELECT ON mysql.general_log TO 'stepguard'@'127.0.0.1';
    FLUSH PRIVILEGES;"
  started mariadb
  log "mariadb up on 127.0.0.1:$MYSQL_PORT (general log: $data/general.log)"
}

start_redis() {
  command -v redis-server >/dev/null 2>&1 || { log "redis-server not found (run: $0 install)"; return 1; }
  if redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; then log "redis already up on $REDIS_PORT"; return; fi
  prepare_dir; mkdir -p "$DIR/redis"
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
    --dir "$DIR/redis" --pidfile "$DIR/redis/redis.pid" --logfile "$DIR/redis/redis.log" >/dev/null
  wait_for redis sh -c "redis-cli -h 127.0.0.1 -p $REDIS_PORT ping | grep -q PONG"
  started redis
  log "redis up on 127.0.0.1:$REDIS_PORT"
}

stop() { # no names: all of them
  local want=" ${*:-postgres mariadb redis redis-cluster} "
  local bin; bin="$(pg_bin || true)"
  if [[ "$want" == *" postgres "* ]]; then
    local pgdata; pgdata="$(pg_query 'SHOW data_directory' || true)"
    [ -n "$pgdata" ] || pgdata="$DIR/pg"
    if [ -n "$bin" ] && [ -f "$pgdata/postmaster.pid" ]; then as_user postgres "$bin/pg_ctl" -D "$pgdata" -m fast stop >/dev/null 2>&1 || true; fi
  fi
  if [[ "$want" == *" mariadb "* ]]; then
    local pidfile; pidfile="$(mysql_query 'SELECT @@pid_file' || true)"
    [ -n "$pidfile" ] || pidfile="$DIR/mysql/mysqld.pid"
    if [ -f "$pidfile" ]; then kill "$(cat "$pidfile")" 2>/dev/null || true; fi
    for _ in $(seq 1 50); do [ -f "$pidfile" ] || break; sleep 0.2; done
  fi
  if [[ "$want" == *" redis "* ]]; then redis-cli -h 127.0.0.1 -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true; fi
  if [[ "$want" == *" redis-cluster "* ]]; then bash "$ROOT/scripts/redis-cluster.sh" stop || true; fi
  log "stopped:${want% }"
}

# The running servers know where their data and logs are, whichever directory started them.
pg_query() {
  local bin; bin="$(pg_bin)"; [ -n "$bin" ] || return 1
  "$bin/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -tAc "$1" 2>/dev/null
}
mysql_query() {
  local client; client="$(command -v mariadb || command -v mysql || true)"; [ -n "$client" ] || return 1
  "$client" -h 127.0.0.1 -P "$MYSQL_PORT" -ustepguard -pstepguard -N -B -e "$1" 2>/dev/null
}

print_env() {
  local pg_log="$DIR/pg/server.log" mysql_log="$DIR/mysql/general.log" found
  found="$(pg_query 'SHOW data_directory' || true)"; [ -z "$found" ] || pg_log="$found/server.log"
  found="$(mysql_query 'SELECT @@general_log_file' || true)"; [ -z "$found" ] || mysql_log="$found"
  cat <<EOF
SG_PG_URL=postgres://postgres@127.0.0.1:$PG_PORT/stepguard
SG_MYSQL_URL=mysql://stepguard:stepguard@127.0.0.1:$MYSQL_PORT/stepguard
SG_REDIS_URL=redis://127.0.0.1:$REDIS_PORT
SG_PG_LOG=$pg_log
SG_MYSQL_LOG=$mysql_log
EOF
  bash "$ROOT/scripts/redis-cluster.sh" env
}

case "${1:-}" in
  install) install ;;
  start) STARTED_FILE="${2:-}"; start_pg; start_mysql; start_redis; bash "$ROOT/scripts/redis-cluster.sh" start "$STARTED_FILE" ;;
  stop) shift; stop "$@" ;;
  env) print_env ;;
  *) echo "usage: $0 install|start|stop|env" >&2; exit 2 ;;
esac
