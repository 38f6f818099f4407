#!/usr/bin/env bash
# make bench: benchmarks against peers, each in the same run, printing
# medians and ratios. Not run by CI (the machines are shared and noisy).
#
#   load_pg         pgbench -i -s 10 loaded PostgreSQL -> PostgreSQL, against
#                   pgcopydb clone, pg_dump | psql and a binary COPY pipe
#   backlog_pg      a backlog of pgbench transactions -> PostgreSQL, against
#                   CREATE SUBSCRIPTION
#   backlog_jsonl   a backlog already in the slot -> JSON lines, against the
#                   pg_recvlogical decoding floor
#
#   compare_pg      full compare of pgbench_accounts at CMP_SCALE (10: 1M rows),
#                   equal and with 3 differing rows, next to pgcopydb compare
#                   data (or, with Debian's pgcopydb 0.10, a whole-table digest)
#
# SCALE, JOBS, TXNS, CMP_SCALE and ROUNDS tune them (defaults 10, 4, 40000, 10, 3).
set -euo pipefail
BIN=${1:-build/penstock}
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh --bench
echo "== initial load -> PostgreSQL vs pgcopydb clone, pg_dump | psql, binary COPY"
/usr/bin/python3 bench/load_pg.py "$BIN" "${ROUNDS:-3}" "${SCALE:-10}" "${JOBS:-4}"
echo "== pgbench backlog -> PostgreSQL vs CREATE SUBSCRIPTION"
/usr/bin/python3 bench/backlog_pg.py "$BIN" "${ROUNDS:-3}" "${TXNS:-40000}"
echo "== backlog -> JSON lines vs pg_recvlogical"
/usr/bin/python3 bench/backlog_jsonl.py "$BIN" "${ROUNDS:-3}"
echo "== full compare of pgbench_accounts (1M rows), equal and with 3 differing rows"
/usr/bin/python3 bench/compare_pg.py "$BIN" "${ROUNDS:-3}" "${CMP_SCALE:-10}"
