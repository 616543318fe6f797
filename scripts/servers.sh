#!/usr/bin/env bash
# Test servers: two throwaway MariaDB (or MySQL) instances on free local ports.
#
#   scripts/servers.sh start   install mariadb-server if no server binary is found, initialise the data
#                              directories (once) and start a *source* (binlog ROW/FULL, GTID strict) and
#                              a *target*; idempotent
#   scripts/servers.sh stop    stop the servers this script started (nothing else)
#   scripts/servers.sh status  say whether they run
#   scripts/servers.sh env     print `export FERRY_TEST_…=…` lines (connection URLs) for `eval`
#
# Extra instances, for tests that must stop or restart a server without disturbing the shared two:
#   scripts/servers.sh start-one NAME   start (initialising once) an extra source-like instance in
#                                       $STATE/NAME (binlog ROW/FULL, GTID strict, its own server id);
#                                       idempotent
#   scripts/servers.sh stop-one NAME    stop that instance (only if this script started it)
#   scripts/servers.sh url NAME         print its connection URL (also works for source and target)
# A (re)started instance reuses its previous port when that port is free, so a client configured
# with host:port can reconnect after a restart. `stop` also stops the extra instances it started.
#
# Everything lives under .ferry-test/ in the repository (ignored by git), or under $FERRY_TEST_DIR.
# Account for tests and demos: ferry / ferry-test-pw, all privileges (also root over the socket).
#
# TLS: `start` and `start-one` generate once, with openssl, into $STATE/tls: a test CA (ca.pem), a
# server certificate signed by it for DNS:ferry-test-db and IP:127.0.0.1 (server.pem/server-key.pem;
# *not* for `localhost`, so connecting to localhost under verify_identity is a name mismatch), a
# client certificate (client.pem/client-key.pem, CN ferry-test-client) and a second, unrelated CA
# (other-ca.pem) for "untrusted CA" tests; every instance is started with ssl_ca/ssl_cert/ssl_key.
# `env` exports FERRY_TEST_TLS_DIR and FERRY_TEST_TLS_CA. Instances that were already running
# without TLS keep running without it until they are restarted.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="${FERRY_TEST_DIR:-$ROOT/.ferry-test}"
USER_NAME=ferry
USER_PASS=ferry-test-pw
BUFFER_POOL="${FERRY_TEST_BUFFER_POOL:-256M}"

log() { echo "servers.sh: $*" >&2; }

find_server() {
  local b
  for b in mariadbd mysqld /usr/sbin/mariadbd /usr/sbin/mysqld /usr/libexec/mysqld; do
    if command -v "$b" >/dev/null 2>&1; then command -v "$b"; return 0; fi
  done
  return 1
}

find_client() {
  local b
  for b in mariadb mysql; do
    if command -v "$b" >/dev/null 2>&1; then command -v "$b"; return 0; fi
  done
  return 1
}

install_server() {
  if find_server >/dev/null && find_client >/dev/null; then return 0; fi
  log "no mariadbd/mysqld on PATH: installing mariadb-server with apt"
  local sudo=""
  if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  # policy-rc.d keeps the package from starting its own server on port 3306.
  $sudo apt-get install -y -qq mariadb-server mariadb-client >/dev/null
  find_server >/dev/null || { log "mariadb-server installed but no server binary found"; exit 1; }
}

port_free() {
  ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

pick_port() {
  local p
  for _ in $(seq 1 200); do
    p=$(( 20000 + RANDOM % 20000 ))
    if port_free "$p"; then echo "$p"; return 0; fi
  done
  log "no free port found"; exit 1
}

running() { # name
  local pidf="$STATE/$1/mariadbd.pid"
  [ -f "$pidf" ] && kill -0 "$(cat "$pidf")" 2>/dev/null
}

client() { # name, args...
  local name=$1; shift
  "$(find_client)" --no-defaults --socket="$STATE/$name/mysqld.sock" -u"$(id -un)" "$@"
}

tls_material() { # generates the test CA and certificates once
  local d="$STATE/tls"
  if [ -f "$d/done" ]; then return 0; fi
  command -v openssl >/dev/null 2>&1 || { log "openssl is needed to generate the test certificates"; exit 1; }
  mkdir -p "$d"
  (
    cd "$d"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=Ferry test CA" \
      -keyout ca-key.pem -out ca.pem
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=Unrelated test CA" \
      -keyout other-ca-key.pem -out other-ca.pem
    printf 'basicConstraints=CA:FALSE\nsubjectAltName=DNS:ferry-test-db,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >server.ext
    openssl req -newkey rsa:2048 -nodes -subj "/CN=ferry-test-db" -keyout server-key.pem -out server.csr
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 3650 \
      -extfile server.ext -out server.pem
    printf 'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n' >client.ext
    openssl req -newkey rsa:2048 -nodes -subj "/CN=ferry-test-client" -keyout client-key.pem -out client.csr
    openssl x509 -req -in client.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 3650 \
      -extfile client.ext -out client.pem
    rm -f server.csr client.csr
  ) >"$d/openssl.log" 2>&1 || { cat "$d/openssl.log" >&2; log "generating the test certificates failed"; exit 1; }
  chmod 600 "$d"/*-key.pem
  touch "$d/done"
}

init_datadir() { # name
  local dir="$STATE/$1"
  if [ -d "$dir/data/mysql" ]; then return 0; fi
  mkdir -p "$dir/data" "$dir/binlog"
  local installer
  installer=$(command -v mariadb-install-db || command -v mysql_install_db || true)
  if [ -n "$installer" ]; then
    "$installer" --no-defaults --datadir="$dir/data" --user="$(id -un)" \
      --auth-root-authentication-method=socket --skip-test-db >"$dir/install.log" 2>&1 \
      || { cat "$dir/install.log" >&2; exit 1; }
  else
    "$(find_server)" --no-defaults --initialize-insecure --datadir="$dir/data" >"$dir/install.log" 2>&1 \
      || { cat "$dir/install.log" >&2; exit 1; }
  fi
}

launch() { # name server_id port extra-args... : starts mariadbd, waits until it answers
  local name=$1 sid=$2 port=$3; shift 3
  local dir="$STATE/$name"
  local as_root=()
  if [ "$(id -u)" = 0 ]; then as_root=(--user=root); fi
  : >"$dir/error.log"
  "$(find_server)" --no-defaults "${as_root[@]}" \
    --datadir="$dir/data" --socket="$dir/mysqld.sock" --pid-file="$dir/mariadbd.pid" \
    --port="$port" --bind-address=127.0.0.1 --log-error="$dir/error.log" \
    --server-id="$sid" --skip-name-resolve --max-connections=400 --local-infile=1 \
    --max-allowed-packet=256M --innodb-buffer-pool-size="$BUFFER_POOL" \
    --innodb-log-file-size=256M --innodb-flush-log-at-trx-commit=2 --sync-binlog=0 \
    --character-set-server=utf8mb4 --collation-server=utf8mb4_general_ci \
    --event-scheduler=OFF --ssl-ca="$STATE/tls/ca.pem" --ssl-cert="$STATE/tls/server.pem" \
    --ssl-key="$STATE/tls/server-key.pem" "$@" >/dev/null 2>&1 9>&- &
  local pid=$!
  for _ in $(seq 1 300); do
    if client "$name" -e 'SELECT 1' >/dev/null 2>&1; then return 0; fi
    if ! kill -0 "$pid" 2>/dev/null; then return 1; fi
    sleep 0.2
  done
  return 1
}

start_one() { # name server_id extra-args...
  local name=$1 sid=$2; shift 2
  local dir="$STATE/$name"
  if running "$name"; then return 0; fi
  tls_material
  init_datadir "$name"
  local port attempt
  for attempt in 1 2 3; do
    # A restart reuses the previous port when it is free (clients keep their host:port).
    port=""
    if [ "$attempt" = 1 ] && [ -f "$dir/port" ]; then
      port=$(cat "$dir/port")
      if ! [[ "$port" =~ ^[0-9]+$ ]] || ! port_free "$port"; then port=""; fi
    fi
    [ -n "$port" ] || port=$(pick_port)
    echo "$port" >"$dir/port"
    if launch "$name" "$sid" "$port" "$@"; then break; fi
    # Another process may have taken the port between the check and the bind: try another one.
    if grep -q 'Address already in use' "$dir/error.log" 2>/dev/null && [ "$attempt" -lt 3 ]; then
      log "$name: port $port was taken meanwhile; retrying on another port"
      continue
    fi
    log "$name server did not come up; see $dir/error.log"; tail -n 20 "$dir/error.log" >&2; exit 1
  done
  client "$name" -e "CREATE USER IF NOT EXISTS '$USER_NAME'@'%' IDENTIFIED BY '$USER_PASS';
    GRANT ALL PRIVILEGES ON *.* TO '$USER_NAME'@'%' WITH GRANT OPTION;"
  touch "$dir/started-by-servers-sh"
  log "$name up on 127.0.0.1:$port"
}

write_env() {
  {
    for name in source target; do
      local up
      up=$(echo "$name" | tr a-z A-Z)
      echo "export FERRY_TEST_${up}_URL=mysql://$USER_NAME:$USER_PASS@127.0.0.1:$(cat "$STATE/$name/port")"
      echo "export FERRY_TEST_${up}_SOCKET=$STATE/$name/mysqld.sock"
    done
    echo "export FERRY_TEST_TLS_DIR=$STATE/tls"
    echo "export FERRY_TEST_TLS_CA=$STATE/tls/ca.pem"
  } >"$STATE/servers.env"
}

cmd_start() {
  install_server
  mkdir -p "$STATE"
  start_one source 1 --log-bin="$STATE/source/binlog/mysql-bin" --binlog-format=ROW \
    --binlog-row-image=FULL --gtid-strict-mode=1 --log-slave-updates=1 --binlog-checksum=CRC32
  start_one target 2 --log-bin="$STATE/target/binlog/mysql-bin" --binlog-format=ROW
  write_env
}

stop_instance() { # name: stops it if this script started it
  local name=$1 pid
  [ -f "$STATE/$name/started-by-servers-sh" ] || return 0
  if running "$name"; then
    pid=$(cat "$STATE/$name/mariadbd.pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$pid" 2>/dev/null || true
    log "$name stopped"
  fi
  rm -f "$STATE/$name/started-by-servers-sh"
}

extra_instances() { # the names of the instances started with start-one
  local m
  for m in "$STATE"/*/extra-instance; do
    [ -f "$m" ] && basename "$(dirname "$m")"
  done
  return 0
}

cmd_stop() {
  local name
  for name in source target; do
    stop_instance "$name"
  done
  for name in $(extra_instances); do
    stop_instance "$name"
  done
}

check_extra_name() { # name
  if ! [[ "${1:-}" =~ ^[a-z0-9][a-z0-9_-]*$ ]]; then
    log "instance name must match [a-z0-9][a-z0-9_-]*"; exit 2
  fi
  case "$1" in
    source|target) log "$1 is one of the two main servers: use start/stop"; exit 2 ;;
  esac
}

cmd_start_one() { # name
  local name=$1 dir="$STATE/$1" sid
  check_extra_name "$name"
  install_server
  mkdir -p "$dir"
  touch "$dir/extra-instance"
  # A server id of its own (source = 1, target = 2), kept across restarts.
  if [ ! -f "$dir/server-id" ]; then
    echo $(( 100 + $(printf '%s' "$name" | cksum | cut -d' ' -f1) % 1000000 )) >"$dir/server-id"
  fi
  sid=$(cat "$dir/server-id")
  start_one "$name" "$sid" --log-bin="$dir/binlog/mysql-bin" --binlog-format=ROW \
    --binlog-row-image=FULL --gtid-strict-mode=1 --log-slave-updates=1 --binlog-checksum=CRC32 \
    --innodb-buffer-pool-size="${FERRY_TEST_EXTRA_BUFFER_POOL:-64M}"
}

cmd_url() { # name
  local name=${1:-}
  if [ -z "$name" ] || ! running "$name"; then log "${name:-NAME}: not running"; exit 1; fi
  echo "mysql://$USER_NAME:$USER_PASS@127.0.0.1:$(cat "$STATE/$name/port")"
}

cmd_status() {
  local name rc=0
  for name in source target; do
    if running "$name"; then echo "$name: running on 127.0.0.1:$(cat "$STATE/$name/port")"
    else echo "$name: stopped"; rc=1; fi
  done
  return $rc
}

# Tests start and stop instances from several processes at once (and the same instance from two
# tests of one binary): commands that change instances run one at a time.
case "${1:-}" in
  start|stop|start-one|stop-one)
    mkdir -p "$STATE"
    exec 9>"$STATE/.servers.lock"
    flock 9 ;;
esac

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  env)
    if ! running source || ! running target; then log "servers are not running: run scripts/servers.sh start"; exit 1; fi
    cat "$STATE/servers.env" ;;
  start-one) check_extra_name "${2:-}"; cmd_start_one "$2" ;;
  stop-one) check_extra_name "${2:-}"; stop_instance "$2" ;;
  url) cmd_url "${2:-}" ;;
  *) echo "usage: $0 start|stop|status|env|start-one NAME|stop-one NAME|url NAME" >&2; exit 2 ;;
esac
