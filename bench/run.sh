#!/usr/bin/env bash
# Benchmarks against peers (pgcopydb, logical replication subscriptions,
# pg_dump | psql, pg_recvlogical). They arrive with the initial-load and
# performance work; until then there is nothing to measure honestly.
echo "bench: no benchmarks yet; they compare the initial load and apply speed, which this build does not have." >&2
echo "bench: see docs/benchmarks.md" >&2
