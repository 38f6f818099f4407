#!/usr/bin/env bash
# make demo: a throwaway PostgreSQL with a small shop schema and sample data,
# loaded by penstock into the embedded default target (an SQLite file), live
# changes on the source followed into the target, a stop and a resume, row
# counts and changed rows shown on both sides; then everything is cleaned up.
set -euo pipefail

BIN=${1:-build/penstock}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PGTMP="$ROOT/scripts/pgtmp.sh"
PSQL=/usr/lib/postgresql/15/bin/psql

base=$(mktemp -d /tmp/penstock-demo.XXXXXX)
chmod 755 "$base"
port=$("$PGTMP" freeport)
pid=""
runs=0
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  "$PGTMP" stop "$base/pg"
  rm -rf "$base"
}
trap cleanup EXIT

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
sql() { echo "  source> $1"; "$PSQL" -q -X -h 127.0.0.1 -p "$port" -U postgres -d shop -c "$1" >/dev/null; }
SQLITE=sqlite3
src() { "$PSQL" -X -A -t -F ' | ' -h 127.0.0.1 -p "$port" -U postgres -d shop -c "$1"; }
dst() { "$SQLITE" -separator ' | ' "$base/shop.db" "$1"; }
wait_streaming() {   # penstock logs "; streaming, " once every new commit is captured
  for _ in $(seq 1 600); do
    [ "$(grep -c '; streaming, ' "$base/penstock.log")" -ge "$1" ] && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "demo: penstock did not start streaming; its log:" >&2; cat "$base/penstock.log" >&2; exit 1
}
wait_same() {   # wait_same SQL: poll until the query gives the same answer on both sides
  for _ in $(seq 1 300); do [ "$(src "$1")" = "$(dst "$1")" ] && return 0; sleep 0.1; done
  echo "demo: source and target still differ on: $1" >&2; cat "$base/penstock.log" >&2; exit 1
}
counts() {
  for t in customers orders; do
    printf '  %-10s source %6s rows   target %6s rows\n' "$t" "$(src "SELECT count(*) FROM $t")" \
      "$(dst "SELECT count(*) FROM $t")"
  done
}
both() {   # both SQL: the rows on each side
  src "$1" | sed 's/^/  source> /'
  dst "$1" | sed 's/^/  target> /'
}
start_penstock() {
  "$BIN" run --state-dir "$base/state" "$base/spec.json" >>"$base/penstock.log" 2>&1 &
  pid=$!
  runs=$((runs + 1))
  wait_streaming "$runs"
}

say "starting a throwaway PostgreSQL 15 on 127.0.0.1:$port"
"$PGTMP" start "$base/pg" "$port"
"$PSQL" -q -X -h 127.0.0.1 -p "$port" -U postgres -c "CREATE DATABASE shop"
"$PSQL" -q -X -h 127.0.0.1 -p "$port" -U postgres -d shop <<'SQL'
CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL, email text UNIQUE);
CREATE TABLE orders (id serial PRIMARY KEY, customer_id int REFERENCES customers,
                     total numeric(10,2), paid boolean DEFAULT false,
                     placed_at timestamptz DEFAULT now());
INSERT INTO customers (name, email)
  SELECT 'customer ' || g, 'c' || g || '@example.org' FROM generate_series(1, 2000) g;
INSERT INTO orders (customer_id, total, paid, placed_at)
  SELECT 1 + g % 2000, (g % 500) + 0.99, g % 3 = 0, '2026-01-01'::timestamptz + g * interval '1 minute'
  FROM generate_series(1, 50000) g;
ANALYZE;
SQL

cat > "$base/spec.json" <<SPEC
{
  "name": "shop",
  "type": "sync",
  "source": {"url": "postgresql://postgres@127.0.0.1:$port/shop"},
  "target": {"url": "sqlite://$base/shop.db"},
  "tables": {"include": ["public.*"]},
  "snapshot": {"parallel": 2, "chunk_rows": 20000}
}
SPEC
say "the job spec: load everything, then follow the changes"
cat "$base/spec.json"

say "penstock run: initial load into $base/shop.db, then streaming"
start_penstock
sed 's/^/  log> /' "$base/penstock.log"
counts

say "live changes on the source"
sql "INSERT INTO customers (name, email) VALUES ('Ada', 'ada@example.org')"
sql "UPDATE orders SET paid = true, total = total + 10 WHERE id IN (1, 2, 3)"
sql "DELETE FROM orders WHERE id BETWEEN 100 AND 199"
sql "UPDATE customers SET id = 9999 WHERE email = 'ada@example.org'"
wait_same "SELECT count(*) FROM orders"
wait_same "SELECT id, total FROM orders WHERE id IN (1, 2, 3) ORDER BY id"
wait_same "SELECT id, name FROM customers WHERE id > 2000 ORDER BY id"
counts
say "changed rows, on both sides"
both "SELECT id, total, paid FROM orders WHERE id IN (1, 2, 3) ORDER BY id"
both "SELECT id, name, email FROM customers WHERE id > 2000 ORDER BY id"

say "SIGTERM: penstock finishes the transaction, commits with its checkpoint, exits 0"
kill -TERM "$pid"; rc=0; wait "$pid" || rc=$?; pid=""
echo "  exit status $rc"
tail -n 1 "$base/penstock.log" | sed 's/^/  log> /'

say "changes made while penstock is stopped"
sql "INSERT INTO customers (name) VALUES ('Grace'), ('Edsger')"
sql "UPDATE orders SET total = 0 WHERE customer_id = 42"

say "penstock run again: resumes from the checkpoint in the target, nothing lost or repeated"
start_penstock
grep -E "resuming from" "$base/penstock.log" | sed 's/^/  log> /' || true
wait_same "SELECT id, total FROM orders WHERE customer_id = 42 ORDER BY id"
wait_same "SELECT id, name FROM customers WHERE id > 2000 ORDER BY id"
counts
both "SELECT id, name FROM customers WHERE id > 2000 ORDER BY id"
kill -TERM "$pid"; wait "$pid" || true; pid=""

say "done: the target equals the source; cleaning up"
