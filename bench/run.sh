#!/usr/bin/env bash
# make bench: the benchmarks of issue 7 against peers, each in the same run,
# printing medians and ratios. Not run by CI (the machines are shared and
# noisy). Results go in docs/benchmarks.md.
#
#   1 load_pg.py  pgbench -i -s SCALE loaded PostgreSQL -> PostgreSQL, against
#                 pgcopydb clone (same parallelism), pg_dump | psql and a
#                 binary COPY pipe (the floor)
#   2 backlog.py  a backlog of TXNS pgbench transactions -> PostgreSQL, against
#   5             CREATE SUBSCRIPTION and the pg_recvlogical decoding floor;
#                 the same backlog -> SQLite and -> JSON lines
#   3 lag.py      steady pgbench -R RATE for LAG_SECONDS: commit-to-applied lag
#   4 bigtxn.py   one transaction of BIG_ROWS rows: penstock's peak RSS
#   mysql_bench.py MariaDB (issue 16): a sysbench-like schema of 4 x MY_ROWS rows
#                 -> PostgreSQL against pgloader; a backlog of TXNS transactions
#                 -> JSON lines against mariadb-binlog -v; one transaction of
#                 BIG_ROWS rows: peak RSS
#   compare_pg.py full compare of pgbench_accounts at CMP_SCALE (10: 1M rows),
#                 equal and with 3 differing rows, next to pgcopydb compare
#                 data (or, with Debian's pgcopydb 0.10, a whole-table digest)
#   many_jobs.py  issue 22: MANY_JOBS (50) sync jobs in one penstock server to
#                 PostgreSQL, SQLite and JSON lines under MANY_RATE (500) tx/s
#                 for MANY_MINUTES (10): RSS, threads, connections per job,
#                 per-job lag and throughput, GET /v1/jobs latency; every
#                 target compared with the source
#
# Tunable by environment (defaults are the issue's): ROUNDS (3), SCALE (30),
# JOBS (4), TXNS (100000), RATE (2000), LAG_SECONDS (60), BIG_ROWS (5000000).
# A quick run: ROUNDS=1 SCALE=2 TXNS=10000 LAG_SECONDS=10 BIG_ROWS=200000 make bench
# ONLY=load,backlog,lag,bigtxn,compare,mysql,many picks some of them.
set -euo pipefail
BIN=${1:-build/penstock}
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh --bench
ONLY=${ONLY:-load,backlog,lag,bigtxn,compare,mysql,many}
want() { [[ ",$ONLY," == *",$1,"* ]]; }
if want load; then
  echo "== 1. initial load -> PostgreSQL vs pgcopydb clone, pg_dump | psql, binary COPY"
  /usr/bin/python3 bench/load_pg.py "$BIN" "${ROUNDS:-3}" "${SCALE:-30}" "${JOBS:-4}"
fi
if want backlog; then
  echo "== 2, 5. pgbench backlog -> PostgreSQL, SQLite, JSON lines vs CREATE SUBSCRIPTION, pg_recvlogical"
  /usr/bin/python3 bench/backlog.py "$BIN" "${ROUNDS:-3}" "${TXNS:-100000}"
fi
if want lag; then
  echo "== 3. steady pgbench -R ${RATE:-2000}: commit-to-applied lag"
  /usr/bin/python3 bench/lag.py "$BIN" "${RATE:-2000}" "${LAG_SECONDS:-60}"
fi
if want bigtxn; then
  echo "== 4. one transaction of ${BIG_ROWS:-5000000} rows: peak RSS"
  /usr/bin/python3 bench/bigtxn.py "$BIN" "${BIG_ROWS:-5000000}"
fi
if want compare; then
  echo "== compare: full compare of pgbench_accounts (1M rows), equal and with 3 differing rows"
  /usr/bin/python3 bench/compare_pg.py "$BIN" "${ROUNDS:-3}" "${CMP_SCALE:-10}"
fi
if want mysql; then
  echo "== MariaDB source: load vs pgloader, backlog vs mariadb-binlog -v, one big transaction"
  /usr/bin/python3 bench/mysql_bench.py "$BIN" "${ROUNDS:-3}" "${MY_ROWS:-750000}" "${TXNS:-100000}" \
    "${BIG_ROWS:-5000000}"
fi
if want many; then
  echo "== many jobs: ${MANY_JOBS:-50} jobs in one server, ${MANY_RATE:-500} tx/s for ${MANY_MINUTES:-10} min"
  /usr/bin/python3 bench/many_jobs.py "$BIN" "${MANY_JOBS:-50}" "${MANY_MINUTES:-10}" "${MANY_RATE:-500}"
fi
