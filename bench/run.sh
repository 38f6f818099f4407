#!/usr/bin/env bash
# make bench: benchmarks against peers, each in the same run, printing
# medians and ratios. Not run by CI (the machines are shared and noisy).
#
#   backlog_jsonl   a backlog already in the slot -> JSON lines, against the
#                   pg_recvlogical decoding floor (issue: performance, #5)
#
# The initial-load and SQL-apply benchmarks (pgcopydb, pg_dump | psql,
# CREATE SUBSCRIPTION) arrive with the initial load.
set -euo pipefail
BIN=${1:-build/penstock}
cd "$(dirname "$0")/.."
echo "== backlog -> JSON lines vs pg_recvlogical"
/usr/bin/python3 bench/backlog_jsonl.py "$BIN" "${ROUNDS:-3}"
