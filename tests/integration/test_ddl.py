"""Schemas that change while a job runs (issue 15): tables that come into
or leave the selection, partitions created, attached and detached, columns
added, dropped, renamed and retyped, enum labels added — with penstock
running, stopped, and killed with kill -9 right after the change, rows
written before, during and after it, every row compared. Scenarios after
PostgreSQL's own src/test/subscription/t/ 004 (sync), 006 (rewrite), 008
(different schema), 013 (partitions) and 025 (schema selection).
"""
import collections
import json
import random
import sqlite3
import threading

import pytest

from conftest import CANONICAL, pg_rows, wait_equal, wait_for

MODES = ["running", "stopped", "killed"]


class Churn(threading.Thread):
    """Keeps changing rows of table `t` (id int key, n int) on its own
    connection, concurrently with the scenario's DDL: updates of n and
    deletes and re-inserts of ids 1..50. Only touches columns DDL leaves
    alone."""

    def __init__(self, database, table, seed=7):
        super().__init__(daemon=True)
        self.db, self.table = database, table
        self.rand = random.Random(seed)
        self.halt = threading.Event()
        self.error = None
        self.txns = 0

    def run(self):
        try:
            c = self.db.cluster.connect(self.db.name)
            c.autocommit = True
            cur = c.cursor()
            while not self.halt.is_set():
                k = self.rand.randrange(1, 51)
                if self.rand.random() < 0.2:
                    cur.execute(f"DELETE FROM {self.table} WHERE id = %s", (k,))
                    cur.execute(f"INSERT INTO {self.table} (id, n) VALUES (%s, %s) "
                                f"ON CONFLICT (id) DO NOTHING", (k, self.txns))
                else:
                    cur.execute(f"UPDATE {self.table} SET n = n + 1 WHERE id = %s", (k,))
                self.txns += 1
            c.close()
        except Exception as e:  # reported by stop()
            self.error = e

    def stop(self):
        self.halt.set()
        self.join(30)
        if self.error:
            raise self.error


def drive(p, db, mode, change, seen=None):
    """Makes `change` happen with penstock running, stopped, or killed with
    kill -9 right after it (once penstock logged `seen`, its handling of the
    change, when given), then makes sure it streams again."""
    if mode == "stopped":
        assert p.stop() == 0
        change()
        p.start()
        p.wait_streaming(db)
    elif mode == "killed":
        change()
        if seen:
            p.wait_log(seen)
        p.kill()
        p.start()
        p.wait_streaming(db)
    else:
        change()


def settle(source, target, tables, timeout=120, **kw):
    """wait_equal, where the target's columns may change under the
    comparison (penstock is altering them): a failed read is a "not yet"."""
    import psycopg2
    import time
    deadline = time.monotonic() + timeout
    while True:
        try:
            return wait_equal(source, target, tables, timeout=max(1, deadline - time.monotonic()), **kw)
        except psycopg2.Error:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def canonical_rows(database, query):
    with database.cluster.connect(database.name) as c:
        c.autocommit = True
        with c.cursor() as cur:
            cur.execute(CANONICAL)
            cur.execute(query)
            return sorted(cur.fetchall(), key=repr)


# --- columns: add, drop, rename, retype (006, 008) -------------------------

COLUMNS_SCHEMA = """
CREATE TYPE mood AS ENUM ('sad', 'ok');
CREATE TABLE t (id int PRIMARY KEY, n int NOT NULL DEFAULT 0, v int, gone text, old_name text,
                m mood);
CREATE TABLE full_t (a int, b text);
ALTER TABLE full_t REPLICA IDENTITY FULL;
INSERT INTO t SELECT g, 0, g, 'g' || g, 'o' || g, 'ok' FROM generate_series(1, 200) g;
INSERT INTO full_t SELECT g % 7, 'b' || g FROM generate_series(1, 50) g;
"""


def column_changes(db):
    """Rows before, during and after each change; the change and the rows
    after it in one transaction too."""
    x = db.execute
    x("INSERT INTO t (id, v, gone, old_name, m) VALUES (1001, 1, 'a', 'b', 'sad')")
    # 006: a rewrite — int to bigint with a value only bigint holds, then numeric
    x("BEGIN; ALTER TABLE t ALTER COLUMN v TYPE bigint; "
      "INSERT INTO t (id, v) VALUES (1002, 6000000000); COMMIT")
    x("UPDATE t SET v = v * 1000000 WHERE id BETWEEN 10 AND 20")
    x("ALTER TABLE t ALTER COLUMN v TYPE numeric(20,2)")
    x("INSERT INTO t (id, v) VALUES (1003, 12345678901.25)")
    # added columns: a constant default (older rows get it), NOT NULL, and one
    # a volatile default fills (only the source knows the values)
    x("ALTER TABLE t ADD COLUMN added text NOT NULL DEFAULT 'dflt'")
    x("INSERT INTO t (id, added) VALUES (1004, 'mine')")
    x("ALTER TABLE t ADD COLUMN stamp text DEFAULT md5(random()::text)")
    x("UPDATE t SET added = 'upd' WHERE id % 17 = 0")
    # dropped and renamed (a rename keeps the column's data)
    x("ALTER TABLE t DROP COLUMN gone")
    x("INSERT INTO t (id, v) VALUES (1005, 5)")
    x("ALTER TABLE t RENAME COLUMN old_name TO new_name")
    x("UPDATE t SET new_name = 'renamed' WHERE id % 5 = 0")
    # an enum label added and used at once: PostgreSQL refuses a new label
    # in the transaction that added it, so the next one uses it — the target
    # gets both in one batch, where the same refusal would apply
    x("ALTER TYPE mood ADD VALUE 'happy' BEFORE 'ok'")
    x("INSERT INTO t (id, m) VALUES (1006, 'happy')")
    x("UPDATE t SET m = 'happy' WHERE id % 3 = 0")
    # a new enum type, a column of it and rows, in one transaction; then a
    # label added to it and used
    x("BEGIN; CREATE TYPE size AS ENUM ('s', 'm'); "
      "ALTER TABLE t ADD COLUMN sz size; INSERT INTO t (id, sz) VALUES (1008, 'm'); "
      "UPDATE t SET sz = 's' WHERE id % 11 = 0; COMMIT")
    x("ALTER TYPE size ADD VALUE 'xl' AFTER 'm'")
    x("BEGIN; INSERT INTO t (id, sz) VALUES (1009, 'xl'); UPDATE t SET sz = 'xl' WHERE id % 13 = 0; "
      "COMMIT")
    # a table without a key: a column added and used
    x("ALTER TABLE full_t ADD COLUMN c int DEFAULT 7")
    x("INSERT INTO full_t VALUES (1, 'new', 8)")
    x("UPDATE full_t SET c = 9 WHERE b = 'b3'")
    x("INSERT INTO t (id, v, new_name) VALUES (1007, 7, 'last')")


@pytest.mark.parametrize("mode", MODES)
def test_columns_added_dropped_renamed_retyped_follow_into_postgresql(
        mode, tmp_path, db, target_db, make_job):
    db.execute(COLUMNS_SCHEMA)
    p = make_job("cols", target=target_db.url)
    p.start()
    p.wait_streaming(db)
    churn = Churn(db, "t")
    churn.start()
    try:
        drive(p, db, mode, lambda: column_changes(db), seen="follows the source")
    finally:
        churn.stop()
    settle(db, target_db, ["public.t", "public.full_t"])
    # the target table has the source's columns, types, defaults, NOT NULL
    cols = ("SELECT attname, format_type(atttypid, atttypmod), attnotnull, "
            "pg_get_expr(d.adbin, d.adrelid) FROM pg_attribute a LEFT JOIN pg_attrdef d "
            "ON d.adrelid = a.attrelid AND d.adnum = a.attnum WHERE attrelid = %s::regclass "
            "AND attnum > 0 AND NOT attisdropped ORDER BY attname")
    assert target_db.execute(cols, ("t",)) == db.execute(cols, ("t",))
    labels = "SELECT enumlabel FROM pg_enum WHERE enumtypid = %s::regtype ORDER BY enumsortorder"
    for enum in ("mood", "size"):
        assert target_db.execute(labels, (enum,)) == db.execute(labels, (enum,))
    assert p.stop() == 0
    log = p.stderr()
    assert "refused" not in log and "error" not in log.lower(), log
