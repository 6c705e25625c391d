#!/usr/bin/env bash
# Starts/stops the loopback services the tests and the demo use: PostgreSQL, MariaDB and Redis, each with a
# throwaway data directory under $SG_SERVICES_DIR (default: .services/ in the repo). Idempotent: `start`
# reuses services that already answer. Statement logs are on, so tests can check what the databases saw.
#
#   scripts/services.sh install   # apt-get install whatever is missing (needs root)
#   scripts/services.sh start     # start all three on 127.0.0.1
#   scripts/services.sh stop
#   scripts/services.sh env       # print the connection variables
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="${SG_SERVICES_DIR:-$ROOT/.services}"
PG_PORT="${SG_PG_PORT:-54329}"
MYSQL_PORT="${SG_MYSQL_PORT:-33069}"
REDIS_PORT="${SG_REDIS_PORT:-63799}"

log() { echo "[services] $*" >&2; }

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
  mkdir -p "$DIR"; chmod 755 "$DIR"
  if [ ! -f "$data/PG_VERSION" ]; then
    rm -rf "$data"; mkdir -p "$data"; chown postgres "$data" 2>/dev/null || true
    as_user postgres "$bin/initdb" -D "$data" -U postgres --auth=trust -E UTF8 >/dev/null
  fi
  as_user postgres "$bin/pg_ctl" -D "$data" -l "$data/server.log" -w -o \
    "-c listen_addresses=127.0.0.1 -c port=$PG_PORT -c unix_socket_directories=$data -c log_statement=all -c log_min_messages=warning -c max_connections=200 -c fsync=off" start >/dev/null
  wait_for postgres "$bin/pg_isready" -h 127.0.0.1 -p "$PG_PORT"
  "$bin/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='stepguard'" | grep -q 1 ||
    "$bin/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -qc "CREATE DATABASE stepguard" >/dev/null
  log "postgres up on 127.0.0.1:$PG_PORT (log: $data/server.log)"
}

start_mysql() {
  local server; server="$(command -v mariadbd || command -v mysqld || true)"
  [ -n "$server" ] || { log "MariaDB not found (run: $0 install)"; return 1; }
  local data="$DIR/mysql"
  local client; client="$(command -v mariadb || command -v mysql)"
  if "$client" -h 127.0.0.1 -P "$MYSQL_PORT" -ustepguard -pstepguard -e 'SELECT 1' stepguard >/dev/null 2>&1; then log "mariadb already up on $MYSQL_PORT"; return; fi
  mkdir -p "$DIR"; chmod 755 "$DIR"
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
  log "mariadb up on 127.0.0.1:$MYSQL_PORT (general log: $data/general.log)"
}

start_redis() {
  command -v redis-server >/dev/null 2>&1 || { log "redis-server not found (run: $0 install)"; return 1; }
  if redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; then log "redis already up on $REDIS_PORT"; return; fi
  mkdir -p "$DIR/redis"
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
    --dir "$DIR/redis" --pidfile "$DIR/redis/redis.pid" --logfile "$DIR/redis/redis.log" >/dev/null
  wait_for redis sh -c "redis-cli -h 127.0.0.1 -p $REDIS_PORT ping | grep -q PONG"
  log "redis up on 127.0.0.1:$REDIS_PORT"
}

stop() {
  local bin; bin="$(pg_bin || true)"
  if [ -n "$bin" ] && [ -f "$DIR/pg/postmaster.pid" ]; then as_user postgres "$bin/pg_ctl" -D "$DIR/pg" -m fast stop >/dev/null 2>&1 || true; fi
  if [ -f "$DIR/mysql/mysqld.pid" ]; then kill "$(cat "$DIR/mysql/mysqld.pid")" 2>/dev/null || true; fi
  redis-cli -h 127.0.0.1 -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
  for _ in $(seq 1 50); do [ -f "$DIR/mysql/mysqld.pid" ] || break; sleep 0.2; done
  log "stopped"
}

print_env() {
  cat <<EOF
SG_PG_URL=postgres://postgres@127.0.0.1:$PG_PORT/stepguard
SG_MYSQL_URL=mysql://stepguard:stepguard@127.0.0.1:$MYSQL_PORT/stepguard
SG_REDIS_URL=redis://127.0.0.1:$REDIS_PORT
SG_PG_LOG=$DIR/pg/server.log
SG_MYSQL_LOG=$DIR/mysql/general.log
EOF
}

case "${1:-}" in
  install) install ;;
  start) start_pg; start_mysql; start_redis ;;
  stop) stop ;;
  env) print_env ;;
  *) echo "usage: $0 install|start|stop|env" >&2; exit 2 ;;
esac
