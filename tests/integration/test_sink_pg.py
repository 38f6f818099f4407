"""The PostgreSQL sink against real PostgreSQL: a source database describes
tables and gives canonical text, a second database is the target, and the
sink is driven through the core wrappers by tests/tools/sinkcheck.

Every expected value comes from the source database or from the input the
test feeds; the target is read back with the same text settings.
"""
import json
import os
import pathlib
import socket
import subprocess

import pytest

from conftest import wait_for
from test_stream import TYPE_ZOO, TYPE_ZOO_ROW

ROOT = pathlib.Path(__file__).resolve().parents[2]
TOOLS = pathlib.Path(os.environ.get("PENSTOCK_TOOLS", ROOT / "build" / "tools"))
SINKCHECK = str(TOOLS / "sinkcheck")

# The canonical text settings of every penstock session (util/pgconn.h).
TEXT_SETTINGS = ("SET DateStyle = ISO; SET TimeZone = 'UTC'; SET IntervalStyle = postgres; "
                 "SET extra_float_digits = 3; SET bytea_output = hex")

TYPE_CLASSES = {"int2": "integer", "int4": "integer", "int8": "integer", "float4": "float",
                "float8": "float", "numeric": "numeric", "bool": "bool", "json": "json",
                "jsonb": "json", "bytea": "bytes"}


# ---- helpers ------------------------------------------------------------------

@pytest.fixture
def target(db):
    t = db.cluster.new_database()
    yield t
    t.conn.close()


def run(script, timeout=120):
    """Runs sinkcheck on script; returns (results by step, stderr)."""
    p = subprocess.run([SINKCHECK], input=json.dumps(script), capture_output=True, text=True,
                       timeout=timeout)
    assert p.returncode in (0, 1), p.stderr
    lines = [json.loads(line) for line in p.stdout.splitlines()]
    return lines, p.stderr


def script(tgt, tables, steps, job="j"):
    return {"url": tgt.url, "job": job, "tables": tables, "steps": steps}


def ok(results):
    bad = [r for r in results if not r["ok"]]
    assert not bad, bad
    return results


def describe(db, table, schema="public"):
    """The table's definition from the source catalog, in sinkcheck's form
    (what a PostgreSQL source's describe reports)."""
    oid = db.value("SELECT %s::regclass::oid", (f'"{schema}"."{table}"',))
    cols = db.execute("""
        SELECT a.attnum, a.attname, format_type(a.atttypid, a.atttypmod), a.atttypid,
               a.attnotnull, pg_get_expr(d.adbin, d.adrelid), a.attidentity,
               tn.nspname NOT IN ('pg_catalog', 'information_schema'), t.typname,
               (SELECT format('"%%s"."%%s"', replace(sn.nspname, '"', '""'),
                              replace(s.relname, '"', '""'))
                  FROM pg_depend dep
                  JOIN pg_class s ON s.oid = dep.objid AND s.relkind = 'S'
                  JOIN pg_namespace sn ON sn.oid = s.relnamespace
                 WHERE dep.refobjid = a.attrelid AND dep.refobjsubid = a.attnum
                   AND dep.deptype = 'a' AND a.attidentity = ''),
               coalesce(a.attnum = ANY (i.indkey), false)
          FROM pg_attribute a
          LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
          JOIN pg_type t ON t.oid = a.atttypid
          JOIN pg_namespace tn ON tn.oid = t.typnamespace
          LEFT JOIN pg_index i ON i.indrelid = a.attrelid AND i.indisprimary
         WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped
           AND a.attgenerated = ''
         ORDER BY a.attnum""", (oid,))
    position = {c[0]: n for n, c in enumerate(cols)}
    columns = []
    for (_, name, typ, typoid, notnull, default, ident, user, typname, seq, key) in cols:
        columns.append({"name": name, "type": typ, "oid": typoid, "not_null": notnull,
                        "default": default, "identity": ident or None, "user_type": user,
                        "sequence": seq, "key": key,
                        "class": TYPE_CLASSES.get(typname, "text")})
    constraints = []
    for name, kind, sql, keys in db.execute(
            "SELECT conname, contype, pg_get_constraintdef(oid), conkey FROM pg_constraint "
            "WHERE conrelid = %s AND contype IN ('p', 'u', 'c') ORDER BY conname", (oid,)):
        constraints.append({"name": name, "kind": kind, "sql": sql,
                            "cols": [position[k] for k in keys or [] if k in position]})
    for name, sql in db.execute(
            "SELECT c.relname, pg_get_indexdef(x.indexrelid) FROM pg_index x "
            "JOIN pg_class c ON c.oid = x.indexrelid WHERE x.indrelid = %s AND NOT EXISTS "
            "(SELECT 1 FROM pg_constraint k WHERE k.conindid = x.indexrelid) ORDER BY 1",
            (oid,)):
        constraints.append({"name": name, "kind": "i", "sql": sql, "cols": []})
    return {"schema": schema, "name": table, "engine": "postgresql", "columns": columns,
            "constraints": constraints}


def texts(d, table, order="1"):
    """Every row of table as the server's canonical text of each column
    (format %s calls the type's output function; ::text would trim char(n))."""
    cols = [r[0] for r in d.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 "
        "AND NOT attisdropped ORDER BY attnum", (table,))]
    d.execute(TEXT_SETTINGS)
    rows = d.execute("SELECT " + ", ".join(
        f"CASE WHEN {ident(c)} IS NULL THEN NULL ELSE format('%s', {ident(c)}) END"
        for c in cols)
        + f" FROM {table} ORDER BY {order}")
    return cols, [list(r) for r in rows]


def table_json(name, cols, key=(), schema="public"):
    """A minimal table for sinkcheck: cols is a list of (name, type); key
    names the primary key columns (added by table_finish)."""
    names = [c for c, _ in cols]
    cons = [{"name": f"{name}_pkey", "kind": "p", "sql": f"PRIMARY KEY ({', '.join(key)})",
             "cols": [names.index(k) for k in key]}] if key else []
    return {"schema": schema, "name": name, "engine": "postgresql",
            "columns": [{"name": c, "type": t, "key": c in key, "not_null": c in key}
                        for c, t in cols],
            "constraints": cons}


def ident(name):
    return '"' + name.replace('"', '""') + '"'


def attributes(d, table):
    return d.execute("""
        SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
               pg_get_expr(ad.adbin, ad.adrelid), a.attidentity
          FROM pg_attribute a LEFT JOIN pg_attrdef ad
            ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
         WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped
         ORDER BY a.attnum""", (table,))


def constraints_of(d, table, kinds):
    return d.execute("SELECT conname, contype, pg_get_constraintdef(oid) FROM pg_constraint "
                     "WHERE conrelid = %s::regclass AND contype = ANY(%s) ORDER BY 1",
                     (table, list(kinds)))


def indexes_of(d, table):
    return d.execute("SELECT pg_get_indexdef(indexrelid) FROM pg_index "
                     "WHERE indrelid = %s::regclass ORDER BY 1", (table,))


# ---- table creation -------------------------------------------------------------

ORDERS = '''
CREATE TABLE orders (
  id serial PRIMARY KEY,
  code varchar(12) NOT NULL,
  qty integer NOT NULL DEFAULT 1 CHECK (qty > 0),
  price numeric(12,2),
  created timestamptz NOT NULL DEFAULT now(),
  m mood DEFAULT 'ok',
  tags text[] DEFAULT '{}',
  gid bigint GENERATED ALWAYS AS IDENTITY,
  gid2 int GENERATED BY DEFAULT AS IDENTITY,
  "Odd ""Name""" char(3),
  CONSTRAINT orders_code_qty_key UNIQUE (code, qty),
  CONSTRAINT price_ok CHECK (price >= 0)
);
CREATE INDEX orders_created_idx ON orders (created DESC);
CREATE INDEX orders_lower_code ON orders (lower(code)) WHERE qty > 1;
'''


def test_creation_keeps_full_fidelity(db, target):
    db.execute("CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')")
    db.execute(ORDERS)
    target.execute("CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')")
    tables = {"orders": describe(db, "orders")}
    res = ok(run(script(target, tables, [{"prepare": "orders"}, {"flush": True}]))[0])
    assert res[0]["created"] is True
    # Columns exactly as in the source: type, not null, default, identity.
    assert attributes(target, "orders") == attributes(db, "orders")
    assert constraints_of(target, "orders", "c") == constraints_of(db, "orders", "c")
    # Keys and indexes wait for table_finish.
    assert constraints_of(target, "orders", "pu") == []
    assert indexes_of(target, "orders") == []
    # The serial's sequence exists and belongs to the column.
    assert target.value("SELECT pg_get_serial_sequence('orders', 'id')") == \
        db.value("SELECT pg_get_serial_sequence('orders', 'id')")

    steps = [{"finish": "orders"}, {"flush": True}, {"finish": "orders"}, {"flush": True}]
    ok(run(script(target, tables, steps))[0])       # twice: idempotent
    assert constraints_of(target, "orders", "pu") == constraints_of(db, "orders", "pu")
    assert indexes_of(target, "orders") == indexes_of(db, "orders")
    assert attributes(target, "orders") == attributes(db, "orders")

    # Identity ALWAYS takes the source's values (OVERRIDING SYSTEM VALUE).
    db.execute("INSERT INTO orders (code, price, m, \"Odd \"\"Name\"\"\") "
               "VALUES ('a\tb', 1.50, 'happy', 'x')")
    cols, rows = texts(db, "orders")
    steps = [{"begin": {}}, {"op": "c", "table": "orders", "new": rows[0]}, {"commit": "0/1"},
             {"flush": True}]
    ok(run(script(target, tables, steps))[0])
    assert texts(target, "orders") == (cols, rows)

    # Prepare again with drop_and_create: a fresh, empty table.
    res = ok(run(script(target, tables, [{"prepare": "orders", "create": "drop_and_create"},
                                         {"flush": True}]))[0])
    assert res[0]["created"] is True
    assert target.value("SELECT count(*) FROM orders") == 0
    assert attributes(target, "orders") == attributes(db, "orders")


def test_missing_user_type_is_named(db, target):
    db.execute("CREATE TYPE mood AS ENUM ('sad', 'ok')")
    db.execute("CREATE TABLE feelings (id int PRIMARY KEY, m mood)")
    res = run(script(target, {"f": describe(db, "feelings")},
                     [{"prepare": "f"}, {"flush": True}]))[0]
    assert not res[0]["ok"] and res[0]["code"] == "invalid_input"
    msg = res[0]["error"]
    assert "column m" in msg and "mood" in msg and "create the type in the target first" in msg
    assert "public.feelings" in msg
    assert res[1]["ok"]                 # a refusal leaves the transaction usable
    assert target.value("SELECT to_regclass('public.feelings')") is None


def test_existing_table_is_checked(db, target):
    db.execute("CREATE TABLE t (id int PRIMARY KEY, a text, b int)")
    tables = {"t": describe(db, "t")}
    target.execute("CREATE TABLE t (id int PRIMARY KEY, a text)")
    res = run(script(target, tables, [{"prepare": "t"}]))[0]
    assert not res[0]["ok"] and "has no column b" in res[0]["error"]

    target.execute("ALTER TABLE t ADD COLUMN b int")
    target.execute("INSERT INTO t VALUES (1, 'x', 1)")
    res = run(script(target, tables, [{"prepare": "t"}, {"flush": True}]))[0]
    assert not res[0]["ok"] and res[0]["code"] == "invalid_input"
    assert "public.t" in res[0]["error"] and "target.truncate_before_load" in res[0]["error"]
    assert target.value("SELECT count(*) FROM t") == 1

    res = ok(run(script(target, tables, [{"prepare": "t", "truncate": True},
                                         {"flush": True}]))[0])
    assert res[0]["created"] is False
    assert target.value("SELECT count(*) FROM t") == 0


def test_missing_table(db, target):
    tables = {"t": table_json("nowhere", [("id", "integer"), ("a", "text")], key=["id"])}
    res = run(script(target, tables, [{"prepare": "t", "create": "never"}, {"flush": True}]))[0]
    assert not res[0]["ok"] and "public.nowhere" in res[0]["error"]
    assert "target.create_tables" in res[0]["error"]
    res = run(script(target, tables, [{"begin": {}}, {"op": "c", "table": "t", "new": [1, "x"]},
                                      {"flush": True}]))[0]
    assert res[0]["ok"] and not res[1]["ok"]
    assert "public.nowhere does not exist in the target" in res[1]["error"]
    assert "target.create_tables" in res[1]["error"]
    assert not res[2]["ok"]             # nothing commits after a lost change


# ---- values ---------------------------------------------------------------------

TRICKY = ["tab\there", "new\nline", "carriage\rreturn", "back\\slash", "\\N", "\\", "",
          None, "trailing\\", "é ü 中文 \U0001F600", "\\t not a tab", "a\t\n\r\\b",
          "x" * 70000 + "\t\n\\" * 20000]


def test_copy_of_tricky_text(db, target):
    tables = {"t": table_json("t", [("id", "integer"), ("v", "text")], key=["id"])}
    rows = [[i, v] for i, v in enumerate(TRICKY)]
    steps = [{"prepare": "t"}, {"begin": {}}] + \
            [{"op": "r", "table": "t", "new": r} for r in rows] + \
            [{"commit": "0/1"}, {"finish": "t"}, {"flush": True}]
    ok(run(script(target, tables, steps))[0])
    got = target.execute("SELECT id, v FROM t ORDER BY id")
    assert [list(r) for r in got] == rows
    # NULL and the empty string stay apart; the text "\N" is not NULL.
    assert target.value("SELECT count(*) FROM t WHERE v IS NULL") == 1
    assert target.value("SELECT count(*) FROM t WHERE v = ''") == 1
    assert target.value("SELECT count(*) FROM t WHERE v = '\\N'") == 1


def test_type_zoo_round_trips(db, target):
    db.execute(TYPE_ZOO)
    db.execute(TYPE_ZOO_ROW)
    cols, rows = texts(db, "zoo")
    source_row = rows[0]
    assert source_row[cols.index("ch")] == "ab "            # padding kept in the text
    tables = {"zoo": describe(db, "zoo")}
    second = ["2"] + source_row[1:]
    steps = [{"prepare": "zoo"}, {"begin": {}},
             {"op": "r", "table": "zoo", "new": source_row},     # COPY path
             {"commit": "0/1"}, {"finish": "zoo"}, {"begin": {}},
             {"op": "c", "table": "zoo", "new": second},         # prepared statement path
             {"commit": "0/2"}, {"flush": True}]
    ok(run(script(target, tables, steps))[0])
    tcols, trows = texts(target, "zoo")
    assert tcols == cols
    assert trows == [source_row, second]

    # Without a primary key rows are matched on the text of every column,
    # types without an = operator (json) and char(n) padding included.
    nopk = dict(describe(db, "zoo"), name="zoo_nopk", constraints=[])
    for c in nopk["columns"]:
        c["key"] = True                                # REPLICA IDENTITY FULL
    tables = {"z": nopk}
    changed = list(source_row)
    changed[cols.index("txt")] = "changed"
    steps = [{"prepare": "z"}, {"begin": {}}] + \
            [{"op": "r", "table": "z", "new": source_row}] * 3 + \
            [{"commit": "0/1"}, {"begin": {}},
             {"op": "d", "table": "z", "old": source_row},
             {"op": "u", "table": "z", "old": source_row, "new": changed},
             {"commit": "0/2"}, {"flush": True}]
    res, err = run(script(target, tables, steps))
    ok(res)
    assert "found no row" not in err
    _, trows = texts(target, "zoo_nopk", order='"txt"')
    assert sorted(trows, key=lambda r: r[cols.index("txt")]) == [changed, source_row]


# ---- changes --------------------------------------------------------------------

T3 = {"t": table_json("t", [("id", "integer"), ("a", "text"), ("big", "text")], key=["id"])}


def rows_of(d, table="t"):
    return [list(r) for r in d.execute(f"SELECT * FROM {table} ORDER BY 1")]


def test_update_changes_key_and_keeps_unchanged(db, target):
    steps = [{"prepare": "t"}, {"begin": {}},
             {"op": "r", "table": "t", "new": [1, "x", "BIG1"]},
             {"op": "r", "table": "t", "new": [2, "y", "BIG2"]},
             {"commit": "0/1"}, {"finish": "t"}, {"begin": {}},
             {"op": "u", "table": "t", "old": [1, None, None], "old_is_key": True,
              "new": [10, "x2", {"u": 1}]},
             {"op": "u", "table": "t", "new": [2, "y2", {"u": 1}]},       # no old row
             {"op": "m"},                                                # ignored
             {"op": "c", "table": "t", "new": [3, "z", "BIG3"]},
             {"op": "d", "table": "t", "old": [3, None, None], "old_is_key": True},
             {"commit": "0/2"}, {"flush": True}]
    res, err = run(script(target, T3, steps))
    ok(res)
    assert rows_of(target) == [[2, "y2", "BIG2"], [10, "x2", "BIG1"]]
    assert "found no row" not in err


def test_missing_rows_are_counted_and_warned(db, target):
    steps = [{"prepare": "t"}, {"finish": "t"}, {"begin": {}},
             {"op": "c", "table": "t", "new": [1, "a", "b"]},
             {"op": "u", "table": "t", "old": [7, None, None], "old_is_key": True,
              "new": [7, "x", "y"]},
             {"op": "d", "table": "t", "old": [8, None, None], "old_is_key": True},
             {"op": "d", "table": "t", "old": [9, None, None], "old_is_key": True},
             {"commit": "0/1"}, {"flush": True}]
    res, err = run(script(target, T3, steps))
    ok(res)
    assert rows_of(target) == [[1, "a", "b"]]
    warnings = [line for line in err.splitlines() if "found no row" in line]
    assert len(warnings) == 1                       # rate-limited
    assert "public.t" in warnings[0] and "diverged" in warnings[0]


def test_duplicate_insert_fails_the_batch(db, target):
    steps = [{"prepare": "t"}, {"finish": "t"}, {"begin": {}},
             {"op": "c", "table": "t", "new": [1, "a", "b"]}, {"commit": "0/1"},
             {"flush": True}, {"begin": {}},
             {"op": "c", "table": "t", "new": [2, "new", "row"]},
             {"op": "c", "table": "t", "new": [1, "again", "b"]},
             {"checkpoint": "{\"at\": 2}"}, {"commit": "0/2"}, {"flush": True},
             {"load_checkpoint": True}]
    res, _ = run(script(target, T3, steps))
    assert all(r["ok"] for r in res[:11])
    assert not res[11]["ok"] and res[11]["sqlstate"] == "23505"
    assert "public.t" in res[11]["error"] and "Key (id)=(1) already exists" in res[11]["error"]
    assert not res[12]["ok"] and "abandoned" in res[12]["error"]
    # Nothing of the failed batch is there, checkpoint included.
    assert rows_of(target) == [[1, "a", "b"]]
    assert target.value("SELECT count(*) FROM penstock.checkpoint") == 0


def test_reprocessing_upserts(db, target):
    tables = dict(T3, k={"schema": "public", "name": "k", "columns": [
        {"name": "a", "type": "integer", "key": True, "not_null": True},
        {"name": "b", "type": "text", "key": True, "not_null": True}],
        "constraints": [{"name": "k_pkey", "kind": "p", "sql": "PRIMARY KEY (a, b)",
                         "cols": [0, 1]}]})
    tables["t"] = dict(tables["t"], constraints=[
        {"name": "t_pkey", "kind": "p", "sql": "PRIMARY KEY (id)", "cols": [0]}])
    steps = [{"prepare": "t"}, {"prepare": "k"}, {"begin": {}},
             {"op": "r", "table": "t", "new": [1, "a", "A"]},
             {"op": "r", "table": "t", "new": [2, "b", "B"]},
             {"op": "r", "table": "k", "new": [1, "x"]},
             {"commit": "0/1"}, {"finish": "t"}, {"finish": "k"}, {"flush": True},
             {"begin": {"reprocessing": True}},
             {"op": "c", "table": "t", "new": [1, "a2", "A2"]},          # exists: updated
             {"op": "c", "table": "t", "new": [5, "e", "E"]},            # new
             {"op": "u", "table": "t", "old": [7, None, None], "old_is_key": True,
              "new": [7, "g", "G"]},                                     # missing: inserted
             {"op": "u", "table": "t", "old": [2, None, None], "old_is_key": True,
              "new": [20, "b2", {"u": 1}]},                              # key change
             {"op": "u", "table": "t", "new": [5, "e2", {"u": 1}]},      # unchanged kept
             {"op": "d", "table": "t", "old": [99, None, None], "old_is_key": True},
             {"op": "c", "table": "k", "new": [1, "x"]},                 # all-key: nothing
             {"op": "c", "table": "k", "new": [2, "y"]},
             {"commit": "0/2"}, {"flush": True},
             # The same transaction again changes nothing.
             {"begin": {"reprocessing": True}},
             {"op": "c", "table": "t", "new": [1, "a2", "A2"]},
             {"op": "c", "table": "t", "new": [5, "e", "E"]},
             {"op": "u", "table": "t", "old": [2, None, None], "old_is_key": True,
              "new": [20, "b2", {"u": 1}]},
             {"op": "u", "table": "t", "new": [5, "e2", {"u": 1}]},
             {"commit": "0/2"}, {"flush": True}]
    res, err = run(script(target, tables, steps))
    ok(res)
    assert "found no row" not in err
    # Row 2 moved to key 20 keeping its unchanged 'big', both the first
    # time (old key there) and the second (new key there).
    assert rows_of(target) == [[1, "a2", "A2"], [5, "e2", "E"], [7, "g", "G"],
                               [20, "b2", "B"]]
    assert rows_of(target, "k") == [[1, "x"], [2, "y"]]


def test_truncate(db, target):
    target.execute("CREATE TABLE parent (id int PRIMARY KEY)")
    target.execute("CREATE TABLE child (id int PRIMARY KEY, pid int REFERENCES parent)")
    target.execute("CREATE TABLE ident (id int GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, "
                   "v text)")
    target.execute("INSERT INTO parent VALUES (1), (2)")
    target.execute("INSERT INTO child VALUES (1, 1)")
    target.execute("INSERT INTO ident (v) VALUES ('a'), ('b'), ('c')")
    tables = {"parent": table_json("parent", [("id", "integer")], key=["id"]),
              "child": table_json("child", [("id", "integer"), ("pid", "integer")], key=["id"]),
              "ident": table_json("ident", [("id", "integer"), ("v", "text")], key=["id"])}
    # One source TRUNCATE of two related tables: same LSN, sent as one.
    steps = [{"begin": {}}, {"op": "t", "table": "child", "lsn": 100},
             {"op": "t", "table": "parent", "lsn": 100},
             {"op": "t", "table": "ident", "lsn": 101, "truncate_flags": ["restart_identity"]},
             {"commit": "0/1"}, {"flush": True}]
    ok(run(script(target, tables, steps))[0])
    assert target.value("SELECT count(*) FROM parent") == 0
    assert target.value("SELECT count(*) FROM child") == 0
    assert target.value("SELECT count(*) FROM ident") == 0
    target.execute("INSERT INTO ident (v) VALUES ('again')")
    assert target.value("SELECT id FROM ident") == 1                 # identity restarted

    target.execute("INSERT INTO parent VALUES (1)")
    target.execute("INSERT INTO child VALUES (1, 1)")
    steps = [{"begin": {}}, {"op": "t", "table": "parent", "lsn": 200,
                             "truncate_flags": ["cascade"]},
             {"op": "c", "table": "parent", "new": [5]}, {"commit": "0/2"}, {"flush": True}]
    ok(run(script(target, tables, steps))[0])
    assert target.value("SELECT count(*) FROM child") == 0
    assert rows_of(target, "parent") == [[5]]


def test_table_without_key_changes_one_row(db, target):
    tables = {"n": dict(table_json("n", [("a", "integer"), ("b", "text")]),
                        replica_identity="f")}
    for c in tables["n"]["columns"]:
        c["key"] = True
    steps = [{"prepare": "n"}, {"begin": {}}] + \
            [{"op": "r", "table": "n", "new": [1, "x"]}] * 3 + \
            [{"op": "r", "table": "n", "new": [3, None]}] * 2 + \
            [{"op": "r", "table": "n", "new": [2, "y"]}, {"commit": "0/1"}, {"begin": {}},
             {"op": "d", "table": "n", "old": [1, "x"]},
             {"op": "u", "table": "n", "old": [1, "x"], "new": [1, "z"]},
             {"op": "d", "table": "n", "old": [3, None]},                # NULL-safe
             {"op": "d", "table": "n", "old": [4, "nothing"]},           # missing
             {"commit": "0/2"}, {"flush": True}]
    res, err = run(script(target, tables, steps))
    ok(res)
    assert sorted(rows_of(target, "n"), key=str) == sorted(
        [[1, "x"], [1, "z"], [2, "y"], [3, None]], key=str)
    assert "found no row" in err                    # the missing one, only


def test_table_without_key_reprocessing_inserts_once(db, target):
    tables = {"n": table_json("n", [("a", "integer"), ("b", "text")])}
    for c in tables["n"]["columns"]:
        c["key"] = True
    replay = [{"begin": {"reprocessing": True}},
              {"op": "c", "table": "n", "new": [1, "x"]},
              {"op": "c", "table": "n", "new": [2, None]},
              {"op": "u", "table": "n", "old": [9, "gone"], "new": [9, "still gone"]},
              {"op": "d", "table": "n", "old": [8, "gone"]},
              {"commit": "0/2"}, {"flush": True}]
    steps = [{"prepare": "n"}, {"begin": {}}, {"op": "r", "table": "n", "new": [1, "x"]},
             {"commit": "0/1"}, {"flush": True}] + replay + replay
    res, err = run(script(target, tables, steps))
    ok(res)
    assert "found no row" not in err
    assert sorted(rows_of(target, "n"), key=str) == [[1, "x"], [2, None]]


def test_partitioned_table_without_key(db, target):
    target.execute("CREATE TABLE p (a int, b text) PARTITION BY RANGE (a)")
    target.execute("CREATE TABLE p1 PARTITION OF p FOR VALUES FROM (0) TO (10)")
    target.execute("CREATE TABLE p2 PARTITION OF p FOR VALUES FROM (10) TO (20)")
    # The first row of each partition has the same ctid: (0,1).
    target.execute("INSERT INTO p VALUES (1, 'same'), (11, 'same'), (12, 'same')")
    tables = {"p": table_json("p", [("a", "integer"), ("b", "text")])}
    steps = [{"begin": {}}, {"op": "d", "table": "p", "old": [11, "same"]},
             {"op": "u", "table": "p", "old": [1, "same"], "new": [1, "changed"]},
             {"commit": "0/1"}, {"flush": True}]
    ok(run(script(target, tables, steps))[0])
    assert rows_of(target, "p") == [[1, "changed"], [12, "same"]]


def test_definition_from_another_engine_gets_portable_types(db, target):
    # an engine the sink has no type map for (a MySQL source's tables have
    # one: pgsink_mysql.c, tested in test_mysql_source.py)
    tables = {"m": {"schema": "shop", "name": "m", "engine": "oracle", "columns": [
        {"name": "id", "type": "int(11)", "class": "integer", "not_null": True, "key": True},
        {"name": "price", "type": "decimal(10,2)", "class": "numeric", "default": "'0.00'"},
        {"name": "doc", "type": "json", "class": "json"},
        {"name": "flag", "type": "tinyint(1)", "class": "bool"},
        {"name": "name", "type": "varchar(20)"}],
        "constraints": [{"name": "PRIMARY", "kind": "p", "sql": "PRIMARY KEY (id)",
                         "cols": [0]}]}}
    steps = [{"prepare": "m"}, {"begin": {}},
             {"op": "r", "table": "m", "new": [1, "9.99", "{\"a\": 1}", True, "x"]},
             {"commit": "0/1"}, {"finish": "m"}, {"flush": True}]
    ok(run(script(target, tables, steps))[0])
    assert [r[:3] for r in attributes(target, "shop.m")] == [
        ("id", "bigint", True), ("price", "numeric", False), ("doc", "jsonb", False),
        ("flag", "boolean", False), ("name", "text", False)]
    assert [list(r) for r in target.execute("SELECT id, price::text, doc::text, flag, name "
                                            "FROM shop.m")] == [[1, "9.99", '{"a": 1}', True, "x"]]
    assert constraints_of(target, "shop.m", "p") == [("PRIMARY", "p", "PRIMARY KEY (id)")]


def test_redescribed_table_mid_stream(db, target):
    target.execute("CREATE TABLE t (id int PRIMARY KEY, a text, b int)")
    tables = {"v1": table_json("t", [("id", "integer"), ("a", "text")], key=["id"]),
              "v2": table_json("t", [("id", "integer"), ("a", "text"), ("b", "integer")],
                               key=["id"]),
              "v3": table_json("t", [("id", "integer"), ("zz", "text")], key=["id"])}
    steps = [{"begin": {}}, {"op": "c", "table": "v1", "new": [1, "one"]},
             {"op": "c", "table": "v2", "new": [2, "two", 2]},
             {"op": "u", "table": "v2", "new": [1, "one", 1]},
             {"op": "u", "table": "v1", "new": [2, "zwei"]},
             {"commit": "0/1"}, {"flush": True},
             {"begin": {}}, {"op": "c", "table": "v3", "new": [3, "x"]}]
    res, _ = run(script(target, tables, steps))
    ok(res[:7])
    assert not res[8]["ok"] and "no column zz" in res[8]["error"]
    assert rows_of(target) == [[1, "one", 1], [2, "zwei", 2]]


def test_replication_role_skips_triggers_and_foreign_keys(db, target):
    target.execute("CREATE TABLE parent (id int PRIMARY KEY)")
    target.execute("CREATE TABLE child (id int PRIMARY KEY, pid int REFERENCES parent)")
    target.execute("CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
                   "$$ BEGIN RAISE EXCEPTION 'trigger fired'; END $$")
    target.execute("CREATE TRIGGER no_insert BEFORE INSERT ON child "
                   "FOR EACH ROW EXECUTE FUNCTION refuse()")
    tables = {"parent": table_json("parent", [("id", "integer")], key=["id"]),
              "child": table_json("child", [("id", "integer"), ("pid", "integer")], key=["id"])}
    steps = [{"begin": {}}, {"op": "c", "table": "child", "new": [1, 42]},   # parent later
             {"op": "c", "table": "parent", "new": [42]}, {"commit": "0/1"}, {"flush": True}]
    ok(run(script(target, tables, steps))[0])
    assert rows_of(target, "child") == [[1, 42]]


# ---- checkpoints and transactions ------------------------------------------------

def test_checkpoint_commits_with_the_data_or_not_at_all(db, target):
    steps = [{"prepare": "t"}, {"finish": "t"}, {"flush": True},
             {"begin": {}}, {"op": "c", "table": "t", "new": [1, "a", "b"]},
             {"checkpoint": "{\"pos\": \"0/1\"}"}, {"commit": "0/1"},
             {"close_without_flush": True}, {"open": True}, {"load_checkpoint": True}]
    res = ok(run(script(target, T3, steps))[0])
    assert res[9]["checkpoint"] is None
    assert target.value("SELECT count(*) FROM t") == 0      # not even the data

    steps = [{"load_checkpoint": True}, {"begin": {}},
             {"op": "c", "table": "t", "new": [1, "a", "b"]},
             {"checkpoint": "{\"pos\": \"0/2\"}"}, {"commit": "0/2"}, {"flush": True},
             {"load_checkpoint": True},
             {"begin": {}}, {"checkpoint": "{\"pos\": \"0/3\"}"}, {"flush": True},
             {"load_checkpoint": True}]
    res = ok(run(script(target, T3, steps))[0])
    assert res[0]["checkpoint"] is None
    assert res[6]["checkpoint"] == "{\"pos\": \"0/2\"}"
    assert res[10]["checkpoint"] == "{\"pos\": \"0/3\"}"
    assert rows_of(target) == [[1, "a", "b"]]
    assert target.value("SELECT body FROM penstock.checkpoint WHERE job = 'j'") == \
        "{\"pos\": \"0/3\"}"

    # Another job's checkpoint is its own; delete removes only ours.
    res = ok(run(script(target, T3, [{"load_checkpoint": True}, {"checkpoint": "other"},
                                     {"flush": True}], job="k"))[0])
    assert res[0]["checkpoint"] is None
    res = ok(run(script(target, T3, [{"delete_checkpoint": True}, {"flush": True},
                                     {"load_checkpoint": True}]))[0])
    assert res[2]["checkpoint"] is None
    assert target.execute("SELECT job, body FROM penstock.checkpoint") == [("k", "other")]


def test_concurrent_opens_create_the_checkpoint_table(db, target):
    body = json.dumps(script(target, {}, [{"load_checkpoint": True}]))
    procs = [subprocess.Popen([SINKCHECK], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(4)]
    outs = [p.communicate(body, timeout=60) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err
        assert json.loads(out.splitlines()[0])["ok"], out
    assert target.value("SELECT count(*) FROM penstock.checkpoint") == 0


def test_ordinary_role_with_password_works_without_replication_role(db, target):
    """A role that may not set session_replication_role gets a warning, not a
    failure; its password travels apart from the URL and is never shown."""
    secret = "s3cret-Pw-for-sink"
    role = f"app_{target.name}"
    target.execute(f"CREATE ROLE {role} LOGIN PASSWORD %s", (secret,))
    target.execute(f"GRANT CREATE ON DATABASE {target.name} TO {role}")
    target.execute("CREATE TABLE t (id int PRIMARY KEY, a text, big text)")
    target.execute(f"GRANT ALL ON t TO {role}")
    url = f"postgresql://{role}@127.0.0.1:{target.cluster.port}/{target.name}"
    body = dict(script(target, T3, [{"begin": {}}, {"op": "c", "table": "t",
                                                     "new": [1, "a", "b"]},
                                    {"checkpoint": "c1"}, {"flush": True},
                                    {"load_checkpoint": True}]),
                url=url, password_env="SINK_PW")
    p = subprocess.run([SINKCHECK], input=json.dumps(body), capture_output=True, text=True,
                       timeout=60, env=dict(os.environ, SINK_PW=secret))
    res = ok([json.loads(line) for line in p.stdout.splitlines()])
    assert res[-1]["checkpoint"] == "c1"
    assert "session_replication_role" in p.stderr and "triggers" in p.stderr
    assert secret not in p.stdout and secret not in p.stderr
    assert rows_of(target) == [[1, "a", "b"]]
    # Without the password the connection is refused, and says so.
    p = subprocess.run([SINKCHECK], input=json.dumps(body), capture_output=True, text=True,
                       timeout=60, env={k: v for k, v in os.environ.items() if k != "SINK_PW"})
    res = json.loads(p.stdout.splitlines()[0])
    assert res["step"] == -1 and res["code"] == "connection_failed"
    target.execute("DROP OWNED BY " + role)
    target.execute("DROP ROLE " + role)


def test_unreachable_target_is_a_connection_error(tmp_path):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    p = subprocess.run([SINKCHECK], input=json.dumps(
        {"url": f"postgresql://postgres@127.0.0.1:{port}/x", "steps": [{"flush": True}]}),
        capture_output=True, text=True, timeout=60)
    res = json.loads(p.stdout.splitlines()[0])
    assert p.returncode == 1 and res["step"] == -1 and res["code"] == "connection_failed"
    assert f"127.0.0.1:{port}" in res["error"]


def test_lost_connection_is_a_connection_error(db, target, tmp_path):
    go = tmp_path / "go"
    steps = [{"prepare": "t"}, {"finish": "t"}, {"flush": True}, {"begin": {}},
             {"op": "c", "table": "t", "new": [1, "a", "b"]},
             {"wait_for_file": str(go)},
             {"op": "c", "table": "t", "new": [2, "a", "b"]},
             {"checkpoint": "{}"}, {"flush": True}]
    p = subprocess.Popen([SINKCHECK], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    p.stdin.write(json.dumps(script(target, T3, steps, job="lost")))
    p.stdin.close()
    lines = []
    while not lines or not lines[-1].get("waiting"):
        line = p.stdout.readline()
        assert line, p.stderr.read()
        lines.append(json.loads(line))
    killed = target.value("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                          "WHERE application_name = 'penstock sink lost'")
    assert killed == 1
    go.touch()
    rest = [json.loads(line) for line in p.stdout.read().splitlines()]
    p.wait(timeout=60)
    failed = [r for r in rest if not r["ok"]]
    assert failed and failed[0]["code"] == "connection_failed", rest
    assert all(r["code"] == "connection_failed" for r in failed)
    assert rest[-1]["step"] == 8 and not rest[-1]["ok"]
    assert target.value("SELECT count(*) FROM t") == 0
    assert target.value("SELECT count(*) FROM penstock.checkpoint") == 0


def test_many_changes_in_one_flush(db, target):
    """More changes than fit in one pipeline round: every result is read."""
    n = 5000
    steps = [{"prepare": "t"}, {"begin": {}},
             {"generate": {"op": "r", "table": "t", "from": 1, "count": n,
                           "new": ["{i}", "row {i}", "\t{i}\n"]}},
             {"commit": "0/1"}, {"finish": "t"}, {"begin": {}},
             {"generate": {"op": "u", "table": "t", "from": 1, "count": n,
                           "new": ["{i}", "updated {i}", {"u": 1}]}},
             {"generate": {"op": "c", "table": "t", "from": n + 1, "count": n,
                           "new": ["{i}", "new {i}", None]}},
             {"generate": {"op": "d", "table": "t", "from": 1, "count": n // 2,
                           "old": ["{i}", None, None], "old_is_key": True}},
             {"commit": "0/2"}, {"flush": True}]
    res, err = run(script(target, T3, steps))
    ok(res)
    assert "found no row" not in err
    assert target.value("SELECT count(*) FROM t") == n + n // 2
    assert target.value("SELECT count(*) FROM t WHERE a = 'updated ' || id AND "
                        "big = E'\\t' || id || E'\\n'") == n // 2
    assert target.value("SELECT count(*) FROM t WHERE a = 'new ' || id AND big IS NULL") == n


def test_penstock_run_streams_into_postgres(db, target, make_penstock):
    """The sink under the real pipeline: the target ends equal to the source."""
    for d in (db, target):
        d.execute("CREATE TABLE items (id int PRIMARY KEY, name text, body text)")
    db.execute("ALTER TABLE items ALTER COLUMN body SET STORAGE EXTERNAL")
    p = make_penstock("e2e", target=target.url)
    p.start()
    p.wait_streaming(db)
    db.execute("INSERT INTO items SELECT g, 'n' || g, repeat('x', g % 7) FROM "
               "generate_series(1, 500) g")
    db.execute("INSERT INTO items VALUES (9999, 'big', repeat('y', 300000))")
    db.execute("UPDATE items SET name = 'big2' WHERE id = 9999")     # body unchanged TOAST
    db.execute("UPDATE items SET id = id + 5000 WHERE id <= 3")      # key change
    db.execute("DELETE FROM items WHERE id BETWEEN 20 AND 29")
    expected = db.execute("SELECT * FROM items ORDER BY id")
    wait_for(lambda: target.execute("SELECT * FROM items ORDER BY id") == expected,
             timeout=60, what="the target to match the source")
    assert p.stop() == 0
    assert target.value("SELECT length(body) FROM items WHERE id = 9999") == 300000
