#!/usr/bin/env bash
# make demo: a throwaway PostgreSQL with a small shop schema, penstock
# streaming its changes to JSON lines, live changes shown as they arrive,
# a stop and a resume, then everything is cleaned up.
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
events() { cat "$base"/out/*.jsonl 2>/dev/null | wc -l; }
wait_events() {   # wait_events N: poll until N events have arrived (30 s at most)
  for _ in $(seq 1 300); do [ "$(events)" -ge "$1" ] && return 0; sleep 0.1; done
  echo "demo: expected $1 events, have $(events); penstock log:" >&2; cat "$base/penstock.log" >&2; exit 1
}
wait_streaming() {   # penstock logs "; streaming, " once every new commit is captured
  for _ in $(seq 1 300); do
    [ "$(grep -c '; streaming, ' "$base/penstock.log")" -ge "$1" ] && return 0; sleep 0.1
  done
  echo "demo: penstock did not start; its log:" >&2; cat "$base/penstock.log" >&2; exit 1
}
show() {   # prints events from line $1 on, one compact line each
  cat "$base"/out/*.jsonl | tail -n +"$1" | /usr/bin/python3 -c '
import json, sys
for line in sys.stdin:
    e = json.loads(line)
    s = e["source"]
    rows = {"before": e["before"], "after": e["after"]}
    body = " ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in rows.items() if v is not None)
    flag = "  (reprocessing)" if e.get("reprocessing") else ""
    where = "%s.%s" % (s["schema"], s["table"])
    print("  event> op=%s %s tx=%s %s%s" % (e["op"], where, s["txId"], body, flag))'
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
CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL, email text);
CREATE TABLE orders (id serial PRIMARY KEY, customer_id int REFERENCES customers, total numeric(10,2),
                     placed_at timestamptz DEFAULT now());
INSERT INTO customers (name, email) VALUES ('Ada', 'ada@example.org'), ('Grace', 'grace@example.org');
SQL

cat > "$base/spec.json" <<SPEC
{
  "name": "shop",
  "type": "cdc",
  "source": {"url": "postgresql://postgres@127.0.0.1:$port/shop"},
  "target": {"url": "jsonl://$base/out"},
  "tables": {"include": ["public.*"]}
}
SPEC
say "the job spec"
cat "$base/spec.json"

say "penstock run: streaming changes of shop.public.* to $base/out"
start_penstock
sed 's/^/  log> /' "$base/penstock.log"

say "live changes on the source"
sql "INSERT INTO orders (customer_id, total) VALUES (1, 19.99), (2, 5.00)"
sql "UPDATE customers SET email = 'ada@lovelace.example' WHERE id = 1"
sql "DELETE FROM orders WHERE total < 10"
wait_events 4
show 1

say "SIGTERM: penstock finishes the transaction, flushes, checkpoints, exits 0"
kill -TERM "$pid"; rc=0; wait "$pid" || rc=$?; pid=""
echo "  exit status $rc"
tail -n 2 "$base/penstock.log" | sed 's/^/  log> /'

say "a change made while penstock is stopped"
sql "INSERT INTO customers (name) VALUES ('Edsger')"

say "penstock run again: resumes from the checkpoint, nothing lost, nothing repeated"
start_penstock
wait_events 5
show 5
grep -E "resuming from" "$base/penstock.log" | sed 's/^/  log> /' || true
kill -TERM "$pid"; wait "$pid" || true; pid=""

say "done: $(events) events; cleaning up"
