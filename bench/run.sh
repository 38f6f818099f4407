#!/usr/bin/env bash
# make bench: the benchmarks of issues 7 and 19 against peers, each in the
# same run, printing medians and ratios, then the issue's table of goals
# (bench/summary.py). Not run by CI (the machines are shared and noisy).
# Results go in docs/benchmarks.md.
#
# Source and target are separate PostgreSQL clusters with PostgreSQL's
# default durability (fsync, synchronous_commit, full_page_writes on), as
# users deploy them (bench/benchlib.py). DURABILITY=fast runs everything on
# non-durable clusters instead: a second configuration, labelled as such,
# never the one the goals are judged on.
#
#   1  load_pg.py    pgbench -i -s SCALE loaded PostgreSQL -> PostgreSQL, against
#                    pgcopydb clone (same parallelism), pg_dump | psql and a
#                    binary COPY pipe (the floor)
#   1b load_many.py  NTABLES tables x NROWS rows with keys, indexes and foreign
#                    keys, against pgcopydb clone and pg_dump | psql
#   2  backlog.py    a backlog of TXNS pgbench transactions -> PostgreSQL, against
#   5                CREATE SUBSCRIPTION and the pg_recvlogical decoding floor;
#                    the same backlog -> SQLite and -> JSON lines
#   3  lag.py        steady pgbench -R RATE for LAG_SECONDS: commit-to-applied lag
#   4  bigtxn.py     one transaction of BIG_ROWS rows: penstock's peak RSS
#      mysql_bench.py MariaDB (issue 16): a sysbench-like schema of 4 x MY_ROWS
#                    rows -> PostgreSQL against pgloader; a backlog of TXNS
#                    transactions -> JSON lines against mariadb-binlog -v; one
#                    transaction of BIG_ROWS rows: peak RSS (its target
#                    cluster is the non-durable one; not among issue 19's goals)
#   6  kafka.py      the backlog of TXNS pgbench transactions -> Kafka (librdkafka's
#                    mock cluster, transactions on) next to -> JSON lines, and one
#                    transaction of BIG_ROWS rows -> Kafka: penstock's peak RSS
#      load_mariadb.py  pgbench -i -s SCALE loaded PostgreSQL -> MariaDB, against
#                    COPY csv | LOAD DATA LOCAL by hand and pg_dump --inserts | mariadb
#      backlog_mariadb.py  a backlog of TXNS pgbench-like txns MariaDB -> MariaDB,
#                    against a MariaDB replica on the same backlog
#      many_jobs.py  issue 22: MANY_JOBS (50) sync jobs in one penstock server to
#                    PostgreSQL, SQLite and JSON lines under MANY_RATE (500) tx/s
#                    for MANY_MINUTES (10): RSS, threads, connections per job,
#                    per-job lag and throughput, GET /v1/jobs latency; every
#                    target compared with the source (ONLY=jobs)
#      compare_pg.py full compare of pgbench_accounts at CMP_SCALE (10: 1M rows),
#                    equal and with 3 differing rows, next to pgcopydb compare
#                    data (or, with Debian's pgcopydb 0.10, a whole-table digest)
#
# Tunable by environment (defaults are the issue's): ROUNDS (3), SCALE (30),
# JOBS (4), NTABLES (1000), NROWS (2000), TXNS (100000), RATE (2000),
# LAG_SECONDS (60), LAG_SCALE (10), BIG_ROWS (5000000), CMP_SCALE (10), MY_ROWS (750000).
# A quick run: ROUNDS=1 SCALE=2 NTABLES=40 TXNS=10000 LAG_SECONDS=10 BIG_ROWS=200000 make bench
# ONLY=load,many,backlog,lag,bigtxn,compare,mysql,mariadb,kafka,jobs picks some of them.
# BENCH_RESULTS=DIR keeps the results (JSON) there; by default a temporary
# directory, removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$(realpath "${1:-build/penstock}")
bash scripts/install-deps.sh --bench
ONLY=${ONLY:-load,many,backlog,lag,bigtxn,compare,mysql,mariadb,kafka,jobs}
want() { [[ ",$ONLY," == *",$1,"* ]]; }
if [ -z "${BENCH_RESULTS:-}" ]; then
  BENCH_RESULTS=$(mktemp -d /tmp/penstock-bench-results.XXXXXX)
  trap 'rm -rf "$BENCH_RESULTS"' EXIT
fi
export BENCH_RESULTS
cd bench
if want load; then
  echo "== 1. initial load -> PostgreSQL vs pgcopydb clone, pg_dump | psql, binary COPY"
  /usr/bin/python3 load_pg.py "$BIN" "${ROUNDS:-3}" "${SCALE:-30}" "${JOBS:-4}"
fi
if want many; then
  echo "== 1b. initial load of ${NTABLES:-1000} tables x ${NROWS:-2000} rows vs pgcopydb clone, pg_dump | psql"
  /usr/bin/python3 load_many.py "$BIN" "${ROUNDS:-3}" "${NTABLES:-1000}" "${NROWS:-2000}" "${JOBS:-4}"
fi
if want backlog; then
  echo "== 2, 5. pgbench backlog -> PostgreSQL, SQLite, JSON lines vs CREATE SUBSCRIPTION, pg_recvlogical"
  /usr/bin/python3 backlog.py "$BIN" "${ROUNDS:-3}" "${TXNS:-100000}"
fi
if want lag; then
  echo "== 3. steady pgbench -R ${RATE:-2000}: commit-to-applied lag"
  /usr/bin/python3 lag.py "$BIN" "${RATE:-2000}" "${LAG_SECONDS:-60}" "${LAG_SCALE:-10}"
fi
if want bigtxn; then
  echo "== 4. one transaction of ${BIG_ROWS:-5000000} rows: peak RSS"
  /usr/bin/python3 bigtxn.py "$BIN" "${BIG_ROWS:-5000000}"
fi
if want kafka; then
  echo "== 6. pgbench backlog -> Kafka (mock cluster, transactions on) vs JSON lines; one transaction of ${BIG_ROWS:-5000000} rows -> Kafka"
  (cd .. && make --no-print-directory -s build/tools/kafka_mock &&   # the mock cluster's keeper
   PENSTOCK_TOOLS="$PWD/build/tools" ONLY=backlog,bigtxn \
     /usr/bin/python3 bench/kafka.py "$BIN" "${ROUNDS:-3}" "${TXNS:-100000}" "${BIG_ROWS:-5000000}")
fi
if want compare; then
  echo "== compare: full compare of pgbench_accounts, equal and with 3 differing rows"
  /usr/bin/python3 compare_pg.py "$BIN" "${ROUNDS:-3}" "${CMP_SCALE:-10}"
fi
if want mysql; then
  echo "== MariaDB source: load vs pgloader, backlog vs mariadb-binlog -v, one big transaction"
  /usr/bin/python3 mysql_bench.py "$BIN" "${ROUNDS:-3}" "${MY_ROWS:-750000}" "${TXNS:-100000}" \
    "${BIG_ROWS:-5000000}"
fi
if want mariadb; then
  echo "== initial load -> MariaDB vs COPY csv | LOAD DATA LOCAL, pg_dump --inserts | mariadb"
  /usr/bin/python3 load_mariadb.py "$BIN" "${ROUNDS:-3}" "${SCALE:-30}" "${JOBS:-4}"
  echo "== backlog of ${TXNS:-100000} txns MariaDB -> MariaDB vs a MariaDB replica (START SLAVE)"
  /usr/bin/python3 backlog_mariadb.py "$BIN" "${ROUNDS:-3}" "${TXNS:-100000}"
fi
if want jobs; then
  echo "== many jobs: ${MANY_JOBS:-50} jobs in one server, ${MANY_RATE:-500} tx/s for ${MANY_MINUTES:-10} min"
  /usr/bin/python3 many_jobs.py "$BIN" "${MANY_JOBS:-50}" "${MANY_MINUTES:-10}" "${MANY_RATE:-500}"
fi
echo
echo "== issue 19: the goals"
/usr/bin/python3 summary.py "$BENCH_RESULTS"
