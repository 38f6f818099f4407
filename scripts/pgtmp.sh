#!/usr/bin/env bash
# Throwaway PostgreSQL 15 clusters for tests, the demo and benchmarks.
#
#   scripts/pgtmp.sh start [--durable] DIR PORT [extra postgres -c settings...]
#   scripts/pgtmp.sh stop DIR        (pg_ctl -m immediate: as a crash)
#   scripts/pgtmp.sh restart DIR     (a stopped cluster, with the settings of its start)
#   scripts/pgtmp.sh freeport
#
# The cluster lives in DIR (created), listens on 127.0.0.1:PORT and on a
# socket in DIR, with wal_level=logical. PostgreSQL refuses to run as root, so
# as root the server runs as the `postgres` account. Authentication: trust for
# the `postgres` superuser on loopback, scram-sha-256 for every other role.
#
# Durability: by default the cluster runs with fsync, synchronous_commit and
# full_page_writes off, which tests need for speed and no user runs. With
# --durable it keeps PostgreSQL's defaults (all three on), as the benchmarks
# need: committing durably is part of what they measure.
set -euo pipefail

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}

as_pg() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

cmd=${1:-}
case "$cmd" in
start)
  shift
  durable=
  if [ "${1:-}" = --durable ]; then durable=1; shift; fi
  dir=$1 port=$2; shift 2
  mkdir -p "$dir"
  [ "$(id -u)" -eq 0 ] && chown postgres: "$dir"
  as_pg "$PGBIN/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; exit 1; }
  cat > "$dir/data/pg_hba.conf" <<HBA
local all all trust
host all postgres 127.0.0.1/32 trust
host replication postgres 127.0.0.1/32 trust
host all all 127.0.0.1/32 scram-sha-256
host replication all 127.0.0.1/32 scram-sha-256
HBA
  opts="-c port=$port -c listen_addresses=127.0.0.1 -c unix_socket_directories=$dir"
  opts="$opts -c wal_level=logical -c max_replication_slots=32 -c max_wal_senders=32"
  opts="$opts -c max_connections=100"
  [ -n "$durable" ] || opts="$opts -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
  for s in "$@"; do opts="$opts -c $s"; done
  printf '%s\n' "$opts" > "$dir/pgtmp.opts"
  as_pg "$PGBIN/pg_ctl" -D "$dir/data" -o "$opts" -l "$dir/server.log" -w -t 60 start >/dev/null \
    || { cat "$dir/server.log" >&2; exit 1; }
  ;;
restart)
  dir=$2
  opts=$(cat "$dir/pgtmp.opts")
  as_pg "$PGBIN/pg_ctl" -D "$dir/data" -o "$opts" -l "$dir/server.log" -w -t 120 start >/dev/null \
    || { cat "$dir/server.log" >&2; exit 1; }
  ;;
stop)
  dir=$2
  [ -d "$dir/data" ] && as_pg "$PGBIN/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
  ;;
freeport)
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
  ;;
*)
  echo "usage: pgtmp.sh start [--durable] DIR PORT [setting=value...] | stop DIR | restart DIR | freeport" >&2
  exit 2
  ;;
esac
