#!/usr/bin/env bash
# GridMap's private PostgreSQL+PostGIS cluster under .gridmap/ (own socket directory and port).
#   devdb.sh start   initialise if needed, start if not running, create the databases
#   devdb.sh stop    stop it
#   devdb.sh restart stop it (fast: sessions are cut off) and start it again
#   devdb.sh url     print the DATABASE_URL of the app database
# GRIDMAP_STATE_DIR puts a cluster somewhere else than .gridmap/ (the fault tests make throwaway ones);
# GRIDMAP_PG_PORT gives it another port.
# PostgreSQL refuses to run as root: when root, the cluster runs as the 'postgres' system user
# (or a 'gridmap' user created for it).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
state="${GRIDMAP_STATE_DIR:-$root/.gridmap}"
data="$state/pg/data"
sock="$state/run"
port="${GRIDMAP_PG_PORT:-54329}"
dbname="${GRIDMAP_DB_NAME:-gridmap}"
log="$state/pg/postgres.log"

bindir() {
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5 -n -r); do
    [ -x "$d/initdb" ] && { echo "$d"; return 0; }
  done
  pg_config --bindir
}
BIN=$(bindir)

if [ "$(id -u)" = 0 ]; then
  owner=postgres
  id -u "$owner" >/dev/null 2>&1 || { owner=gridmap; id -u gridmap >/dev/null 2>&1 || useradd --system --no-create-home gridmap; }
  as_owner() { (cd / && runuser -u "$owner" -- "$@"); }
else
  owner=$(id -un)
  as_owner() { "$@"; }
fi

# The cluster's owner must reach its files. When the checkout lies where that user cannot go (say under
# /root), the data and socket live in a private folder under /var/tmp, linked from .gridmap/.
place_cluster() {
  mkdir -p "$state"
  [ -e "$state/pg" ] && return 0
  if [ "$(id -u)" = 0 ] && ! runuser -u "$owner" -- test -x "$state"; then
    local away="/var/tmp/gridmap-$(printf '%s' "$state" | sha256sum | cut -c1-12)"
    mkdir -p "$away/pg" "$away/run"
    chmod 700 "$away"; chown "$owner" "$away"
    ln -sfn "$away/pg" "$state/pg"
    ln -sfn "$away/run" "$state/run"
  fi
}

url() { echo "postgresql://gridmap@/$dbname?host=$sock&port=$port"; }

running() { data="$(readlink -f "$state/pg" 2>/dev/null || echo "$state/pg")/data"; [ -f "$data/postmaster.pid" ] && as_owner "$BIN/pg_ctl" -D "$data" status >/dev/null 2>&1; }

start() {
  place_cluster
  mkdir -p "$state/pg" "$sock"
  # The server is given real paths: it may not be able to walk through the checkout's own.
  data="$(readlink -f "$state/pg")/data"; log="$(readlink -f "$state/pg")/postgres.log"; sock=$(readlink -f "$sock")
  if [ ! -f "$data/PG_VERSION" ]; then
    chown "$owner" "$state/pg/" "$sock/"
    as_owner "$BIN/initdb" -D "$data" -U gridmap --auth=trust -E UTF8 --locale=C.UTF-8 >"$state/pg/initdb.log" 2>&1 \
      || { cat "$state/pg/initdb.log" >&2; exit 1; }
    # Socket only: nothing listens on the network.
    cat >>"$data/postgresql.conf" <<CONF
listen_addresses = ''
port = $port
unix_socket_directories = '$sock'
max_connections = 200
shared_buffers = 1GB
fsync = on
CONF
  fi
  chown "$owner" "$sock/"
  if ! running; then
    as_owner "$BIN/pg_ctl" -D "$data" -l "$log" -w -t 60 start >/dev/null \
      || { echo "PostgreSQL did not start; its log:" >&2; tail -20 "$log" >&2; exit 1; }
  fi
  local psql=("$BIN/psql" -h "$sock" -p "$port" -U gridmap -d postgres -qtA)
  if [ "$("${psql[@]}" -c "select 1 from pg_database where datname = '$dbname'")" != 1 ]; then
    "${psql[@]}" -c "create database $dbname" >/dev/null
  fi
}

stop() {
  if running; then as_owner "$BIN/pg_ctl" -D "$data" -m fast -w stop >/dev/null; echo "stopped"; else echo "not running"; fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  restart) stop >/dev/null; start ;;
  url) url ;;
  *) echo "usage: $0 start|stop|restart|url" >&2; exit 2 ;;
esac
