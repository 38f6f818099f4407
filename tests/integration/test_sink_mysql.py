"""The MySQL / MariaDB sink against a real MariaDB 10.11, driven through the
core wrappers by tests/tools/sinkcheck: tables created from a PostgreSQL
source's definitions, keys after the load, LOAD DATA that refuses a changed
value, re-processing with several unique keys, checkpoints in the data's
transaction, truncates that do not commit, keyless tables, foreign keys off.

Expected values come from the source database (or from what the test feeds
and applies to a PostgreSQL database as the reference); the target is read
back through mysql_target.maria_rows.
"""
import json
import os
import random
import subprocess

import pytest

from mysql_target import maria_rows, new_database, url_of
from test_sink_pg import SINKCHECK, describe, ok, run, table_json

_n = [0]


@pytest.fixture
def tdb(mariadb):
    """A fresh target database of the module's MariaDB."""
    _n[0] += 1
    return new_database(mariadb, f"s{_n[0]}_{os.getpid()}")


def describe_full(db, table):
    """describe(), with the columns of plain indexes as the PostgreSQL source
    gives them (none for a partial or an expression index)."""
    d = describe(db, table)
    names = [c["name"] for c in d["columns"]]
    for con in d["constraints"]:
        if con["kind"] != "i":
            continue
        keys = db.execute("SELECT i.indpred IS NULL AND 0 <> ALL (i.indkey::int2[]), "
                          "ARRAY(SELECT a.attname FROM unnest(i.indkey::int2[]) WITH ORDINALITY "
                          "k(n, o) JOIN pg_attribute a ON a.attrelid = i.indrelid "
                          "AND a.attnum = k.n ORDER BY k.o) FROM pg_index i JOIN pg_class c "
                          "ON c.oid = i.indexrelid WHERE c.relname = %s", (con["name"],))[0]
        con["cols"] = [names.index(n) for n in keys[1]] if keys[0] else []
    return d


def script(m, db, tables, steps, job="j"):
    return {"url": url_of(m, db), "job": job, "tables": tables, "steps": steps}


def q(m, db, sql, params=None):
    return m.execute(sql, params, database=db)


def rows(m, db, table, order="1"):
    return [list(r) for r in q(m, db, f"SELECT * FROM `{table}` ORDER BY {order}")]


# ---- tables ----------------------------------------------------------------------

ORDERS = '''
CREATE TABLE orders (
  id serial PRIMARY KEY,
  code varchar(12) NOT NULL,
  qty integer NOT NULL DEFAULT 1,
  price numeric(12,2) DEFAULT 0,
  created timestamptz NOT NULL DEFAULT now(),
  flag boolean DEFAULT true,
  note text DEFAULT 'none',
  tags text[],
  blob bytea,
  uid uuid DEFAULT gen_random_uuid(),
  doc jsonb,
  fixed char(3),
  CONSTRAINT orders_code_qty_key UNIQUE (code, qty)
);
CREATE INDEX orders_created_idx ON orders (created DESC);
CREATE INDEX orders_note_idx ON orders (note);
CREATE INDEX orders_lower_code ON orders (lower(code));
CREATE UNIQUE INDEX orders_partial ON orders (qty) WHERE qty > 100;
'''


def columns_of(m, db, table):
    return q(m, db, "SELECT COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, COLUMN_DEFAULT, EXTRA "
                    "FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s "
                    "ORDER BY ORDINAL_POSITION", (db, table))


def indexes_of(m, db, table):
    return sorted(set(q(m, db, "SELECT INDEX_NAME, NON_UNIQUE FROM information_schema.STATISTICS "
                                "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s", (db, table))))


def test_created_table_gets_the_type_map_then_keys_after_the_load(db, mariadb, tdb):
    db.execute(ORDERS)
    tables = {"orders": describe_full(db, "orders")}
    res, err = run(script(mariadb, tdb, tables, [{"prepare": "orders"}, {"flush": True}]))
    ok(res)
    assert res[0]["created"] is True
    cols = {c[0]: c[1:] for c in columns_of(mariadb, tdb, "orders")}
    assert cols["id"][0] == "int(11)" and cols["id"][1] == "NO"
    assert cols["code"][0] == "varchar(12)"
    assert cols["price"][:3] == ("decimal(12,2)", "YES", "0.00")
    assert cols["created"][0] == "datetime(6)" and cols["created"][2] == "current_timestamp(6)"
    assert cols["flag"][0] == "tinyint(1)" and cols["flag"][2] == "1"
    assert cols["note"][0] == "longtext" and cols["note"][2] == "'none'"
    assert cols["tags"][0] == "longtext"          # the array's literal, as text
    assert cols["blob"][0] == "longblob" and cols["uid"][0] == "uuid"
    assert cols["uid"][2] == "uuid()"             # a fresh value for rows made on MariaDB
    assert cols["doc"][0] == "longtext"           # MariaDB's JSON
    assert cols["fixed"][0] == "char(3)"
    # the primary key comes with the table (InnoDB stores rows in its order),
    # the other keys wait for the load, and the table says they are pending
    assert indexes_of(mariadb, tdb, "orders") == [("PRIMARY", 0)]
    assert cols["id"][3] == "auto_increment"
    comment = q(mariadb, tdb, "SELECT TABLE_COMMENT, ENGINE, TABLE_COLLATION FROM "
                              "information_schema.TABLES WHERE TABLE_SCHEMA = %s AND TABLE_NAME = 'orders'",
                 (tdb,))[0]
    assert comment == ("penstock: keys pending for job j", "InnoDB", "utf8mb4_nopad_bin")

    # a crash before the checkpoint recorded the table: the next prepare
    # finds it empty and its own, and table_finish still runs
    res, _ = run(script(mariadb, tdb, tables, [{"prepare": "orders"}]))
    assert res[0]["ok"] and res[0]["created"] is True

    steps = [{"finish": "orders"}, {"flush": True}, {"finish": "orders"}, {"flush": True}]
    res, err = run(script(mariadb, tdb, tables, steps))
    ok(res)                                        # twice: idempotent
    idx = indexes_of(mariadb, tdb, "orders")
    assert idx == [("PRIMARY", 0), ("orders_code_qty_key", 0), ("orders_created_idx", 1),
                   ("orders_note_idx", 1)]
    assert "orders_lower_code is not created: it indexes an expression" in err
    assert "orders_partial is not created: it is a partial unique index" in err
    cols = {c[0]: c[1:] for c in columns_of(mariadb, tdb, "orders")}
    assert cols["id"][3] == "auto_increment"
    # the keys-pending marker is gone; what stays says penstock made the table
    # (mysink_follow.c: the record of the tables whose changes it follows)
    assert q(mariadb, tdb, "SELECT TABLE_COMMENT FROM information_schema.TABLES "
                           "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = 'orders'",
             (tdb,))[0][0] == "penstock: created for job j"

    # drop_and_create: a fresh, empty table
    q(mariadb, tdb, "INSERT INTO orders (code, qty) VALUES ('x', 1)")
    res, _ = run(script(mariadb, tdb, tables, [{"prepare": "orders", "create": "drop_and_create"},
                                               {"flush": True}]))
    ok(res)
    assert res[0]["created"] is True
    assert q(mariadb, tdb, "SELECT COUNT(*) FROM orders")[0][0] == 0


def test_columns_without_an_exact_home_are_refused_with_the_fix(db, mariadb, tdb):
    db.execute("CREATE TABLE money (id int PRIMARY KEY, amount numeric, wide numeric(70,2))")
    tables = {"m": describe(db, "money")}
    res, _ = run(script(mariadb, tdb, tables, [{"prepare": "m"}, {"flush": True}]))
    assert not res[0]["ok"] and res[0]["code"] == "invalid_input"
    msg = res[0]["error"]
    assert "column amount of public.money" in msg and "has no precision" in msg
    assert "create the table in the target yourself" in msg
    assert q(mariadb, tdb, "SHOW TABLES LIKE 'money'") == ()
    # a table the user created with a text column takes the values as they are
    q(mariadb, tdb, "CREATE TABLE money (id int PRIMARY KEY, amount varchar(200), "
                    "wide decimal(65,2))")
    value = "123456789012345678901234567890.123456789012345678901234567890"
    steps = [{"prepare": "m"}, {"begin": {}},
             {"op": "r", "table": "m", "new": [1, value, "1.50"]}, {"commit": "0/1"},
             {"flush": True}]
    ok(run(script(mariadb, tdb, tables, steps))[0])
    assert rows(mariadb, tdb, "money") == [[1, value, __import__("decimal").Decimal("1.50")]]


def test_existing_table_is_checked(db, mariadb, tdb):
    db.execute("CREATE TABLE t (id int PRIMARY KEY, a text, b int)")
    tables = {"t": describe(db, "t")}
    q(mariadb, tdb, "CREATE TABLE t (id int PRIMARY KEY, a text) ENGINE=InnoDB")
    res, _ = run(script(mariadb, tdb, tables, [{"prepare": "t"}]))
    assert not res[0]["ok"] and "has no column b" in res[0]["error"]
    q(mariadb, tdb, "ALTER TABLE t ADD COLUMN b int")
    q(mariadb, tdb, "INSERT INTO t VALUES (1, 'x', 1)")
    res, _ = run(script(mariadb, tdb, tables, [{"prepare": "t"}, {"flush": True}]))
    assert not res[0]["ok"] and "target.truncate_before_load" in res[0]["error"]
    res = ok(run(script(mariadb, tdb, tables, [{"prepare": "t", "truncate": True},
                                               {"flush": True}]))[0])
    assert res[0]["created"] is False and rows(mariadb, tdb, "t") == []
    q(mariadb, tdb, "ALTER TABLE t ENGINE=MyISAM")
    res, _ = run(script(mariadb, tdb, tables, [{"prepare": "t"}]))
    assert not res[0]["ok"] and "MyISAM" in res[0]["error"] and "ENGINE=InnoDB" in res[0]["error"]


# ---- the initial load --------------------------------------------------------------

TRICKY = ["tab\there", "new\nline", "carriage\rreturn", "back\\slash", "\\N", "\\", "",
          None, "trailing\\", "é ü 中文 \U0001F600", "\\t not a tab", "a\t\n\r\\b",
          "x" * 70000 + "\t\n\\" * 20000]


def test_load_data_carries_tricky_text_and_bytes(db, mariadb, tdb):
    tables = {"t": table_json("t", [("id", "integer"), ("v", "text"), ("b", "bytea")],
                              key=["id"])}
    tables["t"]["columns"][2]["class"] = "bytes"
    rows_in = [[i, v, "\\x" + bytes([i, 9, 10, 92, 0, 255]).hex()] for i, v in enumerate(TRICKY)]
    rows_in.append([len(TRICKY), "no bytes", None])
    steps = [{"prepare": "t"}, {"begin": {}}] + \
            [{"op": "r", "table": "t", "new": r} for r in rows_in] + \
            [{"commit": "0/1"}, {"checkpoint": "{}"}, {"flush": True}, {"finish": "t"},
             {"flush": True}]
    ok(run(script(mariadb, tdb, tables, steps))[0])
    got = maria_rows(mariadb, tdb, "t", ["integer", "text", "bytea"])
    want = sorted([tuple(None if v is None else str(v) for v in r) for r in rows_in],
                  key=lambda r: tuple((v is None, v or "") for v in r))
    assert got == want
    assert q(mariadb, tdb, "SELECT COUNT(*) FROM t WHERE v IS NULL")[0][0] == 1
    assert q(mariadb, tdb, "SELECT COUNT(*) FROM t WHERE v = '\\\\N'")[0][0] == 1


def test_a_load_that_would_change_a_value_fails_naming_table_column_and_row(db, mariadb, tdb):
    """LOAD DATA LOCAL turns errors into warnings and loads a cut value; the
    sink fails the load instead, with table, column and row, keeping nothing."""
    q(mariadb, tdb, "CREATE TABLE narrow (id int PRIMARY KEY, v varchar(3), n int NOT NULL)")
    tables = {"t": table_json("narrow", [("id", "integer"), ("v", "text"), ("n", "integer")],
                              key=["id"])}
    steps = [{"prepare": "t"}, {"begin": {}},
             {"op": "r", "table": "t", "new": [1, "abc", 1]},
             {"op": "r", "table": "t", "new": [2, "abcd", 2]},          # too long
             {"op": "r", "table": "t", "new": [3, "x", 3]},
             {"commit": "0/1"}, {"checkpoint": "{\"unit\": 1}"}, {"flush": True}]
    res, _ = run(script(mariadb, tdb, tables, steps))
    failed = [r for r in res if not r["ok"]]
    assert failed, res
    msg = failed[0]["error"]
    assert "narrow" in msg and "column 'v' at row 2" in msg and "id=2" in msg, msg
    assert "nothing of this load is kept" in msg
    assert rows(mariadb, tdb, "narrow") == []
    assert q(mariadb, tdb, "SELECT COUNT(*) FROM _penstock_checkpoint")[0][0] == 0
    # a NULL into NOT NULL would become 0: refused the same way
    steps[3] = {"op": "r", "table": "t", "new": [2, "ab", None]}
    res, _ = run(script(mariadb, tdb, tables, steps))
    msg = [r for r in res if not r["ok"]][0]["error"]
    assert "column 'n' at row 2" in msg and "id=2" in msg, msg
    assert rows(mariadb, tdb, "narrow") == []


def test_values_mariadb_cannot_hold_are_refused_naming_the_row(db, mariadb, tdb):
    tables = {"t": table_json("t", [("id", "integer"), ("ts", "timestamp with time zone"),
                                    ("f", "double precision"), ("u", "uuid")], key=["id"])}
    tables["t"]["columns"][1]["class"] = "timestamptz"
    tables["t"]["columns"][2]["class"] = "float"
    tables["t"]["columns"][3]["class"] = "uuid"
    db.execute("SET TimeZone = 'UTC'")
    bc = db.value("SELECT '0044-03-15 12:00:00+00 BC'::timestamptz::text")
    far = db.value("SELECT '12024-01-01 00:00:00+00'::timestamptz::text")
    ok_ts, ok_u = "2024-01-01 00:00:00+00", "9a8594ce-0b62-4c86-83c9-6b09fd378151"
    # any 128 bits are a PostgreSQL uuid; MariaDB's UUID refuses version
    # digits 8-f with variant digits 0-7 (the chaos campaign's random uuids)
    odd_u = "9a8594ce-0b62-ec86-33c9-6b09fd378151"
    assert db.value("SELECT %s::uuid::text", (odd_u,)) == odd_u
    for bad, col, why in [(["infinity", "1.5", ok_u], "ts", "is infinite"),
                          ([bc, "1", ok_u], "ts", "before the year 1"),
                          ([far, "1", ok_u], "ts", "past the year 9999"),
                          ([ok_ts, "NaN", ok_u], "f", "is NaN"),
                          ([ok_ts, "-Infinity", ok_u], "f", "is infinite"),
                          ([ok_ts, "1", odd_u], "u", "MariaDB's UUID type cannot hold")]:
        for op in ("r", "c"):
            steps = [{"prepare": "t"}, {"finish": "t"}, {"begin": {}},
                     {"op": op, "table": "t", "new": [7] + bad}, {"commit": "0/1"},
                     {"flush": True}]
            res, _ = run(script(mariadb, tdb, tables, steps))
            msg = [r for r in res if not r["ok"]][0]["error"]
            assert f"column {col}" in msg and why in msg and "id=7" in msg, msg
            assert "text type" in msg
            assert rows(mariadb, tdb, "t") == []
    # every version and variant digit MariaDB's own CAST takes, penstock writes
    # as it is; the ones it refuses, penstock refuses too (above: one of them)
    both = [(v, w) for v in "0123456789abcdef" for w in "0123456789abcdef"]
    taken = q(mariadb, tdb, "SELECT " + ", ".join(
        f"CAST('9a8594ce-0b62-{v}c86-{w}3c9-6b09fd378151' AS UUID) IS NOT NULL" for v, w in both))[0]
    accepted = [f"9a8594ce-0b62-{v}c86-{w}3c9-6b09fd378151" for (v, w), t in zip(both, taken) if t]
    assert odd_u not in accepted and 0 < len(accepted) < len(both)
    steps = [{"prepare": "t"}, {"finish": "t"}, {"begin": {}}] + \
        [{"op": "c", "table": "t", "new": [i, ok_ts, "1", u]} for i, u in enumerate(accepted)] + \
        [{"commit": "0/2"}, {"flush": True}]
    ok(run(script(mariadb, tdb, tables, steps))[0])
    assert [r[0] for r in q(mariadb, tdb, "SELECT CAST(u AS CHAR) FROM t ORDER BY id")] == accepted


# ---- changes -----------------------------------------------------------------------

T3 = {"t": table_json("t", [("id", "integer"), ("a", "text"), ("big", "text")], key=["id"])}


def test_changes_missing_rows_and_duplicates(db, mariadb, tdb):
    steps = [{"prepare": "t"}, {"begin": {}},
             {"op": "r", "table": "t", "new": [1, "x", "BIG1"]},
             {"op": "r", "table": "t", "new": [2, "y", "BIG2"]},
             {"commit": "0/1"}, {"flush": True}, {"finish": "t"}, {"begin": {}},
             {"op": "u", "table": "t", "old": [1, None, None], "old_is_key": True,
              "new": [10, "x2", {"u": 1}]},
             {"op": "u", "table": "t", "new": [2, "y2", {"u": 1}]},
             {"op": "m"},
             {"op": "c", "table": "t", "new": [3, "z", "BIG3"]},
             {"op": "d", "table": "t", "old": [3, None, None], "old_is_key": True},
             {"op": "u", "table": "t", "old": [7, None, None], "old_is_key": True,
              "new": [7, "x", "y"]},
             {"op": "d", "table": "t", "old": [8, None, None], "old_is_key": True},
             {"commit": "0/2"}, {"flush": True}]
    res, err = run(script(mariadb, tdb, T3, steps))
    ok(res)
    assert rows(mariadb, tdb, "t") == [[2, "y2", "BIG2"], [10, "x2", "BIG1"]]
    warnings = [line for line in err.splitlines() if "found no row" in line]
    assert len(warnings) == 1 and "public.t" in warnings[0] and "diverged" in warnings[0]

    steps = [{"begin": {}}, {"op": "c", "table": "t", "new": [20, "new", "row"]},
             {"op": "c", "table": "t", "new": [2, "again", "b"]},
             {"checkpoint": "{\"at\": 2}"}, {"commit": "0/3"}, {"flush": True},
             {"load_checkpoint": True}]
    res, _ = run(script(mariadb, tdb, T3, steps))
    failed = [r for r in res if not r["ok"]]
    assert failed[0]["engine_code"] == "1062" and "Duplicate entry '2'" in failed[0]["error"]
    assert "public.t" in failed[0]["error"] or "t" in failed[0]["error"]
    assert "abandoned" in res[-1]["error"]
    assert rows(mariadb, tdb, "t") == [[2, "y2", "BIG2"], [10, "x2", "BIG1"]]
    assert q(mariadb, tdb, "SELECT COUNT(*) FROM _penstock_checkpoint")[0][0] == 0


def test_many_changes_in_one_flush_are_applied_in_bulk(db, mariadb, tdb):
    n = 5000
    steps = [{"prepare": "t"}, {"begin": {}},
             {"generate": {"op": "r", "table": "t", "from": 1, "count": n,
                           "new": ["{i}", "row {i}", "\t{i}\n"]}},
             {"commit": "0/1"}, {"flush": True}, {"finish": "t"}, {"begin": {}},
             {"generate": {"op": "u", "table": "t", "from": 1, "count": n,
                           "new": ["{i}", "updated {i}", {"u": 1}]}},
             {"generate": {"op": "c", "table": "t", "from": n + 1, "count": n,
                           "new": ["{i}", "new {i}", None]}},
             {"generate": {"op": "d", "table": "t", "from": 1, "count": n // 2,
                           "old": ["{i}", None, None], "old_is_key": True}},
             {"generate": {"op": "u", "table": "t", "from": n + 1, "count": 10,
                           "new": ["{i}", "twice {i}", None]}},
             {"commit": "0/2"}, {"flush": True}]
    res, err = run(script(mariadb, tdb, T3, steps))
    ok(res)
    assert "found no row" not in err
    assert q(mariadb, tdb, "SELECT COUNT(*) FROM t")[0][0] == n + n // 2
    assert q(mariadb, tdb, "SELECT COUNT(*) FROM t WHERE a = CONCAT('updated ', id) AND "
                           "big = CONCAT('\\t', id, '\\n')")[0][0] == n // 2
    assert q(mariadb, tdb, "SELECT COUNT(*) FROM t WHERE a = CONCAT('new ', id) AND "
                           "big IS NULL")[0][0] == n - 10
    assert q(mariadb, tdb, "SELECT COUNT(*) FROM t WHERE a LIKE 'twice %%'")[0][0] == 10


def test_truncate_is_a_delete_inside_the_transaction(db, mariadb, tdb):
    q(mariadb, tdb, "CREATE TABLE t (id int PRIMARY KEY, a text, big text)")
    q(mariadb, tdb, "INSERT INTO t VALUES (1, 'a', 'b'), (2, 'c', 'd')")
    # closed without flush: nothing of it happened (TRUNCATE would have committed)
    steps = [{"begin": {}}, {"op": "t", "table": "t", "lsn": 5},
             {"op": "c", "table": "t", "new": [9, "new", "row"]}, {"commit": "0/1"},
             {"close": True}]
    ok(run(script(mariadb, tdb, T3, steps))[0])
    assert rows(mariadb, tdb, "t") == [[1, "a", "b"], [2, "c", "d"]]
    steps[-1] = {"flush": True}
    ok(run(script(mariadb, tdb, T3, steps))[0])
    assert rows(mariadb, tdb, "t") == [[9, "new", "row"]]


def test_table_without_key_changes_one_row(db, mariadb, tdb):
    tables = {"n": dict(table_json("n", [("a", "integer"), ("b", "text"), ("c", "char(3)"),
                                         ("f", "real")]), replica_identity="f")}
    tables["n"]["columns"][3]["class"] = "float"
    for c in tables["n"]["columns"]:
        c["key"] = True
    x, z = [1, "x", "ab ", "0.1"], [1, "z", "ab ", "0.1"]
    steps = [{"prepare": "n"}, {"begin": {}}] + \
            [{"op": "r", "table": "n", "new": x}] * 3 + \
            [{"op": "r", "table": "n", "new": [3, None, None, None]}] * 2 + \
            [{"op": "r", "table": "n", "new": [2, "X", "ab ", "0.1"]}, {"commit": "0/1"},
             {"begin": {}},
             {"op": "d", "table": "n", "old": x},
             {"op": "u", "table": "n", "old": x, "new": z},
             {"op": "d", "table": "n", "old": [3, None, None, None]},   # NULL-safe
             {"op": "d", "table": "n", "old": [4, "nothing", None, None]},
             {"commit": "0/2"}, {"flush": True}]
    res, err = run(script(mariadb, tdb, tables, steps))
    ok(res)
    got = maria_rows(mariadb, tdb, "n", ["integer", "text", "character(3)", "real"])
    assert sorted(got, key=str) == sorted(
        [("1", "x", "ab ", "0.1"), ("1", "z", "ab ", "0.1"), ("2", "X", "ab ", "0.1"),
         ("3", None, None, None)], key=str)
    assert err.count("found no row") == 1           # the missing one, only

    replay = [{"begin": {"reprocessing": True}},
              {"op": "c", "table": "n", "new": [2, "X", "ab ", "0.1"]},
              {"op": "c", "table": "n", "new": [5, "new", None, None]},
              {"op": "d", "table": "n", "old": [8, "gone", None, None]},
              {"commit": "0/3"}, {"flush": True}]
    res, err = run(script(mariadb, tdb, tables, replay + replay))
    ok(res)
    assert "found no row" not in err
    assert q(mariadb, tdb, "SELECT COUNT(*) FROM n WHERE a = 2")[0][0] == 1
    assert q(mariadb, tdb, "SELECT COUNT(*) FROM n WHERE a = 5")[0][0] == 1


def test_foreign_keys_do_not_fire_on_replicated_rows(db, mariadb, tdb):
    q(mariadb, tdb, "CREATE TABLE parent (id int PRIMARY KEY)")
    q(mariadb, tdb, "CREATE TABLE child (id int PRIMARY KEY, pid int, "
                    "FOREIGN KEY (pid) REFERENCES parent (id) ON DELETE CASCADE)")
    q(mariadb, tdb, "INSERT INTO parent VALUES (1)")
    q(mariadb, tdb, "INSERT INTO child VALUES (10, 1)")
    tables = {"parent": table_json("parent", [("id", "integer")], key=["id"]),
              "child": table_json("child", [("id", "integer"), ("pid", "integer")], key=["id"])}
    steps = [{"begin": {}}, {"op": "c", "table": "child", "new": [1, 42]},   # parent later
             {"op": "c", "table": "parent", "new": [42]},
             {"op": "d", "table": "parent", "old": [1], "old_is_key": True},  # no cascade
             {"commit": "0/1"}, {"flush": True}]
    ok(run(script(mariadb, tdb, tables, steps))[0])
    assert rows(mariadb, tdb, "child") == [[1, 42], [10, 1]]
    assert rows(mariadb, tdb, "parent") == [[42]]


# ---- re-processing with several unique keys ------------------------------------------

def _sequence(rand, n):
    """n source transactions on u (id PK, email UNIQUE, code UNIQUE, v), legal
    at every step: a Python model of the table keeps the unique values free."""
    live, txns, next_id = {}, [], 1

    def free(col, value):
        return all(r[col] != value for r in live.values())

    for _ in range(n):
        txn = []
        for _ in range(rand.randrange(1, 4)):
            kind = rand.random()
            if kind < 0.35 or not live:
                row = [next_id, f"e{rand.randrange(30)}", f"c{rand.randrange(30)}", next_id]
                if free(1, row[1]) and free(2, row[2]):
                    live[next_id] = row
                    txn.append(("c", None, list(row)))
                next_id += 1
            elif kind < 0.8:
                k = rand.choice(sorted(live))
                old = list(live[k])
                new = list(old)
                which = rand.randrange(4)
                if which == 0:
                    new[1] = f"e{rand.randrange(30)}"
                elif which == 1:
                    new[2] = f"c{rand.randrange(30)}"
                elif which == 2:
                    new[0] = next_id                 # the key changes
                    next_id += 1
                new[3] += 1
                others = {i: r for i, r in live.items() if i != k}
                if all(r[1] != new[1] and r[2] != new[2] for r in others.values()):
                    del live[k]
                    live[new[0]] = new
                    txn.append(("u", old, new))
            else:
                k = rand.choice(sorted(live))
                txn.append(("d", live.pop(k), None))
        txns.append(txn)
    return txns


def _apply_pg(d, txn):
    for op, old, new in txn:
        if op == "c":
            d.execute("INSERT INTO u VALUES (%s, %s, %s, %s)", new)
        elif op == "u":
            d.execute("UPDATE u SET id = %s, email = %s, code = %s, v = %s WHERE id = %s",
                      new + [old[0]])
        else:
            d.execute("DELETE FROM u WHERE id = %s", (old[0],))


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_reprocessing_with_two_unique_keys_ends_equal_to_the_source(db, mariadb, tdb, seed):
    """The target is a snapshot taken somewhere in the middle of a run of
    source transactions; every transaction from the start is applied again in
    re-processing mode, and the table must end exactly as the source did.
    ON DUPLICATE KEY UPDATE would update the row of whichever unique key
    matched first; REPLACE would delete rows and fire cascades."""
    rand = random.Random(seed)
    db.execute("CREATE TABLE u (id int PRIMARY KEY, email text NOT NULL UNIQUE, "
               "code text NOT NULL UNIQUE, v int)")
    txns = _sequence(rand, 60)
    cut = rand.randrange(10, 50)
    for txn in txns[:cut]:
        _apply_pg(db, txn)
    snapshot = [list(r) for r in db.execute("SELECT id, email, code, v FROM u ORDER BY id")]
    for txn in txns[cut:]:
        _apply_pg(db, txn)
    final = [list(r) for r in db.execute("SELECT id, email, code, v FROM u ORDER BY id")]
    db.execute("DELETE FROM u")
    for txn in txns[:cut // 2]:      # the replay starts before the snapshot
        _apply_pg(db, txn)
    tables = {"u": describe(db, "u")}
    steps = [{"prepare": "u"}, {"begin": {}}] + \
            [{"op": "r", "table": "u", "new": r} for r in snapshot] + \
            [{"commit": "0/1"}, {"flush": True}, {"finish": "u"}, {"flush": True}]
    for i, txn in enumerate(txns[cut // 2:]):
        steps.append({"begin": {"reprocessing": True}})
        for op, old, new in txn:
            steps.append({"op": op, "table": "u", "new": new, "old": old})
        steps.append({"commit": f"0/{i + 2}"})
    steps.append({"flush": True})
    res, err = run(script(mariadb, tdb, tables, steps))
    ok(res)
    assert rows(mariadb, tdb, "u") == final
    assert indexes_of(mariadb, tdb, "u") == [("PRIMARY", 0), ("u_code_key", 0),
                                              ("u_email_key", 0)]


# ---- checkpoints -----------------------------------------------------------------------

def test_checkpoint_commits_with_the_data_or_not_at_all(db, mariadb, tdb):
    steps = [{"prepare": "t"}, {"finish": "t"}, {"flush": True},
             {"begin": {}}, {"op": "c", "table": "t", "new": [1, "a", "b"]},
             {"checkpoint": "{\"pos\": \"0/1\"}"}, {"commit": "0/1"},
             {"close_without_flush": True}, {"open": True}, {"load_checkpoint": True}]
    res = ok(run(script(mariadb, tdb, T3, steps))[0])
    assert res[9]["checkpoint"] is None
    assert rows(mariadb, tdb, "t") == []

    steps = [{"load_checkpoint": True}, {"begin": {}},
             {"op": "c", "table": "t", "new": [1, "a", "b"]},
             {"checkpoint": "{\"pos\": \"0/2\"}"}, {"commit": "0/2"}, {"flush": True},
             {"load_checkpoint": True},
             {"begin": {}}, {"checkpoint": "{\"pos\": \"0/3\"}"}, {"flush": True},
             {"load_checkpoint": True}]
    res = ok(run(script(mariadb, tdb, T3, steps))[0])
    assert res[0]["checkpoint"] is None
    assert res[6]["checkpoint"] == "{\"pos\": \"0/2\"}"
    assert res[10]["checkpoint"] == "{\"pos\": \"0/3\"}"
    res = ok(run(script(mariadb, tdb, T3, [{"load_checkpoint": True}, {"checkpoint": "other"},
                                          {"flush": True}], job="k"))[0])
    assert res[0]["checkpoint"] is None
    ok(run(script(mariadb, tdb, T3, [{"delete_checkpoint": True}, {"flush": True}]))[0])
    assert q(mariadb, tdb, "SELECT job, body FROM _penstock_checkpoint") == (("k", "other"),)


def test_without_a_database_in_the_url_each_schema_gets_its_own(db, mariadb, tdb):
    tables = {"a": table_json("t", [("id", "integer")], key=["id"], schema=f"{tdb}_x"),
              "b": table_json("t", [("id", "integer")], key=["id"], schema=f"{tdb}_y")}
    steps = [{"prepare": "a"}, {"prepare": "b"}, {"begin": {}},
             {"op": "r", "table": "a", "new": [1]}, {"op": "r", "table": "b", "new": [2]},
             {"commit": "0/1"}, {"checkpoint": "{}"}, {"flush": True}]
    ok(run(script(mariadb, "", tables, steps))[0])
    assert rows(mariadb, f"{tdb}_x", "t") == [[1]] and rows(mariadb, f"{tdb}_y", "t") == [[2]]
    assert q(mariadb, "penstock", "SELECT body FROM _penstock_checkpoint WHERE job = 'j'") == \
        (("{}",),)


def test_unreachable_and_lost_connections_are_connection_errors(db, mariadb, tdb, tmp_path):
    p = subprocess.run([SINKCHECK], input=json.dumps(
        {"url": "mysql://root@127.0.0.1:1/x", "steps": [{"flush": True}]}),
        capture_output=True, text=True, timeout=60)
    res = json.loads(p.stdout.splitlines()[0])
    assert res["step"] == -1 and res["code"] == "connection_failed" and "127.0.0.1:1" in res["error"]

    go = tmp_path / "go"
    steps = [{"prepare": "t"}, {"finish": "t"}, {"flush": True}, {"begin": {}},
             {"op": "c", "table": "t", "new": [1, "a", "b"]},
             {"wait_for_file": str(go)},
             {"op": "c", "table": "t", "new": [2, "a", "b"]},
             {"checkpoint": "{}"}, {"flush": True}]
    proc = subprocess.Popen([SINKCHECK], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    proc.stdin.write(json.dumps(script(mariadb, tdb, T3, steps, job="lost")))
    proc.stdin.close()
    lines = []
    while not lines or not lines[-1].get("waiting"):
        line = proc.stdout.readline()
        assert line, proc.stderr.read()
        lines.append(json.loads(line))
    ids = [r[0] for r in mariadb.execute(
        "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = %s", (tdb,))]
    assert ids, "no session of the sink to kill"
    for i in ids:
        mariadb.execute(f"KILL {int(i)}")
    go.touch()
    rest = [json.loads(line) for line in proc.stdout.read().splitlines()]
    proc.wait(timeout=60)
    failed = [r for r in rest if not r["ok"]]
    assert failed and failed[0]["code"] == "connection_failed", (ids, rest)
    assert rows(mariadb, tdb, "t") == []
