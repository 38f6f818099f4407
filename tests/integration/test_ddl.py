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
        except (psycopg2.Error, sqlite3.Error):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def same_rows(source, target, query, timeout=90):
    """Polls until query gives the same rows on both sides (a failed read,
    such as a column not there yet, is a "not yet")."""
    import psycopg2

    def equal():
        try:
            return canonical_rows(target, query) == canonical_rows(source, query)
        except psycopg2.Error:
            return False
    wait_for(equal, timeout, interval=0.2, what=f"target to equal source for {query}")


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


# --- tables that come into the selection (004, 025) -------------------------

NEW_TABLES_SCHEMA = """
CREATE SCHEMA other;
CREATE TABLE t (id int PRIMARY KEY, n int NOT NULL DEFAULT 0);
INSERT INTO t SELECT g, 0 FROM generate_series(1, 50) g;
"""


def new_tables(db):
    x = db.execute
    # created, filled and changed before penstock can know of it
    x("CREATE TABLE tab_late (id int PRIMARY KEY, v text, at timestamptz DEFAULT now())")
    x("INSERT INTO tab_late (id, v) SELECT g, 'r' || g FROM generate_series(1, 300) g")
    x("UPDATE tab_late SET v = 'u' || id WHERE id % 10 = 0")
    x("DELETE FROM tab_late WHERE id % 7 = 0")
    # created and filled in one transaction
    x("BEGIN; CREATE TABLE tab_txn (id bigint PRIMARY KEY, v jsonb); "
      "INSERT INTO tab_txn SELECT g, jsonb_build_object('g', g) FROM generate_series(1, 40) g; "
      "COMMIT")
    # not selected: never copied
    x("CREATE SCHEMA IF NOT EXISTS other")
    x("CREATE TABLE other.outside (id int PRIMARY KEY)")
    x("INSERT INTO other.outside VALUES (1)")


def new_tables_after(db):
    x = db.execute
    x("INSERT INTO tab_late (id, v) SELECT g, 'after' FROM generate_series(301, 320) g")
    x("UPDATE tab_late SET v = 'after' WHERE id % 9 = 0")
    x("DELETE FROM tab_txn WHERE id < 5")
    x("INSERT INTO tab_txn VALUES (100, '{}')")


@pytest.mark.parametrize("mode", MODES)
def test_a_table_created_mid_stream_is_created_and_copied_from_its_first_row(
        mode, tmp_path, db, target_db, make_job):
    db.execute(NEW_TABLES_SCHEMA)
    p = make_job("late", target=target_db.url, tables={"include": ["public.*"]})
    p.start()
    p.wait_streaming(db)
    churn = Churn(db, "t")
    churn.start()
    try:
        drive(p, db, mode, lambda: new_tables(db), seen="came into the selection")
        new_tables_after(db)
    finally:
        churn.stop()
    settle(db, target_db, ["public.t", "public.tab_late", "public.tab_txn"])
    assert target_db.value("SELECT to_regclass('other.outside')") is None
    # created as a load would: the key, the default
    assert target_db.value("SELECT pg_get_expr(adbin, adrelid) FROM pg_attrdef "
                           "WHERE adrelid = 'tab_late'::regclass") == "now()"
    assert target_db.value("SELECT count(*) FROM pg_index WHERE indrelid = 'tab_late'::regclass "
                           "AND indisprimary") == 1
    assert p.stop() == 0


def test_a_cdc_job_copies_a_table_created_while_it_runs(tmp_path, db, target_db, make_job):
    """A cdc job captures changes from its start: a table created after it
    started is all changes, so it is copied too (its rows written before it
    joined the publication come from the table)."""
    db.execute(NEW_TABLES_SCHEMA)
    db.execute("CREATE TABLE tab_late (id int PRIMARY KEY, v text, at timestamptz DEFAULT now())")
    target_db.execute("CREATE TABLE t (id int PRIMARY KEY, n int NOT NULL DEFAULT 0)")
    target_db.execute("INSERT INTO t SELECT g, 0 FROM generate_series(1, 50) g")
    target_db.execute("CREATE TABLE tab_late (id int PRIMARY KEY, v text, at timestamptz DEFAULT now())")
    db.execute("DROP TABLE tab_late")
    p = make_job("late", target=target_db.url, type="cdc", tables={"include": ["public.*"]})
    p.start()
    p.wait_streaming(db)
    new_tables(db)
    p.wait_log("came into the selection")
    new_tables_after(db)
    # tab_late existed in the target (not made by penstock, empty): used as it is
    settle(db, target_db, ["public.t", "public.tab_late", "public.tab_txn"])
    assert p.stop() == 0


# --- partitions created, attached, detached (013) ----------------------------

PARTS_SCHEMA = """
CREATE SCHEMA sch1;
CREATE TABLE sch1.measures (id int, at int, v text, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
CREATE TABLE sch1.measures_p1 PARTITION OF sch1.measures FOR VALUES FROM (0) TO (100);
CREATE TABLE public.measures_p2 PARTITION OF sch1.measures FOR VALUES FROM (100) TO (200);
INSERT INTO sch1.measures SELECT g, g % 200, 'v' || g FROM generate_series(1, 400) g;
"""


def partition_changes(db):
    x = db.execute
    # created as a partition, rows at once (they come through the root)
    x("CREATE TABLE sch1.measures_p3 PARTITION OF sch1.measures FOR VALUES FROM (200) TO (300)")
    x("INSERT INTO sch1.measures VALUES (7, 207, 'p3'), (8, 208, 'p3')")
    # a table filled on its own, then attached: its rows are not in the stream
    x("CREATE TABLE public.measures_p4 (LIKE sch1.measures)")
    x("INSERT INTO public.measures_p4 SELECT g, 300 + g % 100, 'own' FROM generate_series(1, 150) g")
    x("ALTER TABLE sch1.measures ATTACH PARTITION public.measures_p4 FOR VALUES FROM (300) TO (400)")
    x("INSERT INTO sch1.measures VALUES (1000, 350, 'after attach')")
    # detached: its rows leave the table
    x("ALTER TABLE sch1.measures DETACH PARTITION sch1.measures_p1")
    x("INSERT INTO sch1.measures VALUES (1001, 150, 'p2'), (1002, 250, 'p3')")
    x("UPDATE sch1.measures SET v = 'upd' WHERE id % 11 = 0")


def partition_after(db):
    x = db.execute
    x("INSERT INTO sch1.measures VALUES (8, 209, 'p3 again'), (2000, 399, 'p4')")
    x("DELETE FROM sch1.measures WHERE id % 13 = 0")


@pytest.mark.parametrize("mode", MODES)
def test_partitions_created_attached_and_detached_mid_stream(
        mode, tmp_path, db, target_db, make_job):
    db.execute(PARTS_SCHEMA)
    # the parent lives in sch1, two of its partitions in public
    p = make_job("parts", target=target_db.url, tables={"include": ["sch1.*"]})
    p.start()
    p.wait_streaming(db)
    drive(p, db, mode, lambda: partition_changes(db), seen="partition")
    partition_after(db)
    settle(db, target_db, ["sch1.measures"])
    tree = ("SELECT t.relid::regclass::text, t.parentrelid::regclass::text, "
            "pg_get_expr(c.relpartbound, c.oid) FROM pg_partition_tree('sch1.measures') t "
            "JOIN pg_class c ON c.oid = t.relid ORDER BY 1")
    assert target_db.execute(tree) == db.execute(tree)
    # the detached partition stays in the target, as it was when detached
    # (the job selects sch1.*, so it came back as a table of its own: equal)
    settle(db, target_db, ["sch1.measures_p1"])
    assert p.stop() == 0


# --- tables moved into and out of the selection (025) -------------------------

MOVES_SCHEMA = """
CREATE SCHEMA sch1;
CREATE TABLE sch1.tab3 (id int PRIMARY KEY, v text);
CREATE TABLE public.tab4 (id int PRIMARY KEY, v text);
CREATE TABLE sch1.tab5 (id int PRIMARY KEY, v text);
INSERT INTO sch1.tab3 SELECT g, 'three' FROM generate_series(1, 100) g;
INSERT INTO public.tab4 SELECT g, 'four' FROM generate_series(1, 100) g;
INSERT INTO sch1.tab5 SELECT g, 'five' FROM generate_series(1, 100) g;
"""


def moves(db):
    x = db.execute
    x("ALTER TABLE sch1.tab3 SET SCHEMA public")          # out: no longer applied
    x("INSERT INTO public.tab3 VALUES (101, 'moved out')")
    x("ALTER TABLE public.tab4 SET SCHEMA sch1")          # in: copied
    x("INSERT INTO sch1.tab4 VALUES (101, 'moved in')")
    x("UPDATE sch1.tab4 SET v = 'in' WHERE id % 10 = 0")
    x("ALTER TABLE sch1.tab5 RENAME TO tab5_renamed")     # renamed within the selection
    x("INSERT INTO sch1.tab5_renamed VALUES (101, 'renamed')")


@pytest.mark.parametrize("mode", MODES)
def test_tables_moved_in_and_out_of_a_selected_schema(mode, tmp_path, db, target_db, make_job):
    db.execute(MOVES_SCHEMA)
    tab3_before = pg_rows(db, "sch1.tab3")
    p = make_job("moves", target=target_db.url, tables={"include": ["sch1.*"]})
    p.start()
    p.wait_streaming(db)
    drive(p, db, mode, lambda: moves(db), seen="came into the selection")
    settle(db, target_db, ["sch1.tab4", "sch1.tab5_renamed"])
    # what left the selection keeps its rows as they were when it left
    assert pg_rows(target_db, "sch1.tab3") == tab3_before
    assert target_db.value("SELECT to_regclass('public.tab3')") is None
    # a table renamed within the selection: the one penstock made follows
    assert target_db.value("SELECT to_regclass('sch1.tab5')") is None
    # and back in: the table penstock made for it is brought up to date
    db.execute("INSERT INTO public.tab3 VALUES (102, 'while out')")
    db.execute("ALTER TABLE public.tab3 SET SCHEMA sch1")
    db.execute("INSERT INTO sch1.tab3 VALUES (103, 'back in')")
    db.execute("DELETE FROM sch1.tab3 WHERE id <= 10")
    settle(db, target_db, ["sch1.tab3", "sch1.tab4", "sch1.tab5_renamed"])
    assert p.stop() == 0
    log = p.stderr()
    assert "does not exist in the target" not in log, log


# --- a target table the user manages, and changes that cannot apply ---------

from test_server import server, spec_for, start_streaming  # noqa: E402,F401


def test_a_table_the_user_manages_stops_the_job_at_the_change_until_the_user_follows_it(
        server, db, target_db):
    db.execute("CREATE TABLE t (id int PRIMARY KEY, v int, n int NOT NULL DEFAULT 0)")
    db.execute("INSERT INTO t SELECT g, g, 0 FROM generate_series(1, 100) g")
    # the user made the target table, with a column of their own
    target_db.execute("CREATE TABLE t (id int PRIMARY KEY, v int, n int NOT NULL DEFAULT 0, "
                      "mine text DEFAULT 'kept')")
    spec = spec_for(db, target_db.url, name="users", tables={"include": ["public.t"]},
                    target={"url": target_db.url, "create_tables": "never"})
    start_streaming(server, spec)
    churn = Churn(db, "t")
    churn.start()
    try:
        # run on both sides, as a careful user does: the job goes on (the
        # cached types and statements follow)
        target_db.execute("ALTER TABLE t ALTER COLUMN v TYPE bigint")
        db.execute("ALTER TABLE t ALTER COLUMN v TYPE bigint")
        db.execute("INSERT INTO t VALUES (101, 6000000000, 0)")
        wait_for(lambda: target_db.value("SELECT v FROM t WHERE id = 101") == 6000000000, 60,
                 what="the bigint value")
        assert server.job("users")["state"] == "running"
        # on the source only: the job stops at the change, nothing after it
        # applied, and says what to do
        db.execute("ALTER TABLE t ADD COLUMN added int DEFAULT 5")
        db.execute("INSERT INTO t (id, v, added) VALUES (102, 2, 6)")
    finally:
        churn.stop()
    job = server.wait_state("users", "failed_permanently")
    error = job["last_error"]
    assert error["class"] == "schema", error
    msg = error["message"]
    for words in ("table public.t changed on the source", "column added integer added",
                  "Its target table was not created by penstock", "target.follow_ddl: created",
                  "--strategy retry", "follow_ddl to all"):
        assert words in msg, msg
    assert target_db.value("SELECT count(*) FROM t WHERE id = 102") == 0
    # the user follows it; recover retry: nothing lost, nothing twice
    target_db.execute("ALTER TABLE t ADD COLUMN added int DEFAULT 5")
    status, reply = server.call("POST", "/v1/jobs/users/recover", {"strategy": "retry"})
    assert status == 202, reply
    same_rows(db, target_db, "SELECT id, v, n, added FROM t")
    assert target_db.value("SELECT count(*) FROM t WHERE mine = 'kept'") == \
        target_db.value("SELECT count(*) FROM t")
    assert server.job("users")["state"] == "running"


def test_follow_ddl_all_follows_a_table_the_user_made_keeping_their_columns(
        tmp_path, db, target_db, make_job):
    db.execute("CREATE TABLE t (id int PRIMARY KEY, v int)")
    target_db.execute("CREATE TABLE t (id int PRIMARY KEY, v int, mine text DEFAULT 'kept')")
    p = make_job("all", target={"url": target_db.url, "follow_ddl": "all"})
    p.spec["target"] = {"url": target_db.url, "follow_ddl": "all"}
    p.start()
    p.wait_streaming(db)
    db.execute("INSERT INTO t VALUES (1, 1)")
    db.execute("ALTER TABLE t ADD COLUMN c text DEFAULT 'c'")
    db.execute("ALTER TABLE t ALTER COLUMN v TYPE bigint")
    db.execute("INSERT INTO t VALUES (2, 6000000000, 'x')")
    same_rows(db, target_db, "SELECT id, v, c FROM t")
    assert target_db.execute("SELECT mine FROM t ORDER BY id") == [("kept",), ("kept",)]
    assert p.stop() == 0


def test_a_type_narrowing_the_rows_do_not_fit_fails_permanently_with_the_way_out(
        server, db, target_db):
    db.execute("CREATE TABLE t (id int PRIMARY KEY, v bigint)")
    db.execute("INSERT INTO t VALUES (1, 6000000000), (2, 5)")
    spec = spec_for(db, target_db.url, name="narrow", tables={"include": ["public.t"]})
    start_streaming(server, spec)
    # the source narrows with its own expression; the target's cast cannot
    db.execute("ALTER TABLE t ALTER COLUMN v TYPE int USING (v % 1000)::int")
    db.execute("INSERT INTO t VALUES (3, 3)")
    job = server.wait_state("narrow", "failed_permanently")
    error = job["last_error"]
    msg = error["message"]
    assert error["class"] == "schema", error
    for words in ("table public.t changed on the source", "changing the type of column v from "
                  "bigint to integer", "out of range", "--strategy retry", "resync",
                  "--tables public.t"):
        assert words in msg, msg
    assert target_db.value("SELECT count(*) FROM t WHERE id = 3") == 0
    # the way out it names: drop the target table, recover with resync of it
    target_db.execute("DROP TABLE t")
    status, reply = server.call("POST", "/v1/jobs/narrow/recover",
                                {"strategy": "resync", "tables": ["public.t"]})
    assert status == 202, reply
    settle(db, target_db, ["public.t"])
    assert server.job("narrow")["state"] == "running"


# --- SQLite and JSON lines ----------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
def test_columns_and_new_tables_follow_into_sqlite(mode, tmp_path, db, make_job):
    db.execute(COLUMNS_SCHEMA)
    lite = str(tmp_path / "t.db")
    p = make_job("lite", target=f"sqlite://{lite}", tables={"include": ["public.*"]})
    p.start()
    p.wait_streaming(db)
    churn = Churn(db, "t")
    churn.start()

    def change():
        column_changes(db)
        new_tables(db)
    try:
        drive(p, db, mode, change, seen="came into the selection")
        new_tables_after(db)
    finally:
        churn.stop()
    settle(db, None, ["public.t", "public.full_t", "public.tab_late", "public.tab_txn"],
           sqlite_path=lite)
    c = sqlite3.connect(lite)
    try:
        cols = [r[1] for r in c.execute("PRAGMA table_info(t)")]
        decl = {r[1]: r[2] for r in c.execute("PRAGMA table_info(t)")}
    finally:
        c.close()
    assert "gone" not in cols and "new_name" in cols and "old_name" not in cols, cols
    assert decl["v"] == "TEXT", decl     # numeric: the table was rebuilt
    assert p.stop() == 0


def replay(events, table, key="id"):
    """The rows a consumer of the events holds for table: events applied in
    order by key (the text of each value), and schema changes applied to the
    rows held as docs/events.md says (renamed and dropped columns, added ones
    with their "fill")."""
    rows = {}
    for e in events:
        src = e["source"]
        if src.get("table") != table:
            continue
        if e["op"] == "s":
            for ch in e["schema"]["changes"]:
                for r in rows.values():
                    if ch["change"] == "renamed":
                        r[ch["column"]] = r.pop(ch["from"], None)
                    elif ch["change"] == "dropped":
                        r.pop(ch["column"], None)
                    elif ch["change"] == "added" and "fill" in ch:
                        r[ch["column"]] = ch["fill"]
            continue
        if e["op"] not in ("r", "c", "u", "d"):
            continue
        if e["op"] == "d":
            rows.pop(str(e["before"][key]), None)
            continue
        if e["op"] == "u" and e["before"] and str(e["before"][key]) != str(e["after"][key]):
            rows.pop(str(e["before"][key]), None)
        rows[str(e["after"][key])] = {k: None if v is None else str(v) for k, v in e["after"].items()}
    return rows


@pytest.mark.parametrize("mode", MODES)
def test_events_carry_the_new_shape_and_the_change_itself_into_json_lines(
        mode, tmp_path, db, make_job):
    db.execute("CREATE TABLE t (id int PRIMARY KEY, n int NOT NULL DEFAULT 0, v int, gone text, "
               "old_name text)")
    db.execute("INSERT INTO t SELECT g, 0, g, 'g', 'o' FROM generate_series(1, 100) g")
    p = make_job("events", tables={"include": ["public.*"]})
    p.start()
    p.wait_streaming(db)

    def change():
        x = db.execute
        x("INSERT INTO t (id, v) VALUES (1001, 1)")
        x("ALTER TABLE t ALTER COLUMN v TYPE bigint")
        x("INSERT INTO t (id, v) VALUES (1002, 6000000000)")
        x("ALTER TABLE t ADD COLUMN added text DEFAULT 'dflt'")
        x("ALTER TABLE t DROP COLUMN gone")
        x("ALTER TABLE t RENAME COLUMN old_name TO new_name")
        x("INSERT INTO t (id, v, added, new_name) VALUES (1003, 3, 'a', 'n')")
        x("UPDATE t SET added = 'u' WHERE id % 10 = 0")
        new_tables(db)
    drive(p, db, mode, change, seen="came into the selection")
    db.execute("INSERT INTO t (id, v) VALUES (1004, 4)")
    cols = "id, n, v, new_name, added"
    want = {str(r[0]): {c: None if v is None else str(v) for c, v in zip(cols.split(", "), r)}
            for r in canonical_rows(db, f"SELECT {cols} FROM t")}

    def caught_up():
        have = replay(p.events(), "t")
        return have.get("1004") is not None and \
            {k: {c: v.get(c) for c in cols.split(", ")} for k, v in have.items()} == want
    wait_for(caught_up, 90, what="the events to hold the source's rows")
    events = p.events()
    schema = [e for e in events if e["op"] == "s" and e["source"]["table"] == "t"]
    assert schema, "no schema-change event"
    changes = [c for e in schema for c in e["schema"]["changes"]]
    for want_change in ({"change": "type", "column": "v", "from": "integer", "to": "bigint"},
                        {"change": "added", "column": "added", "type": "text"},
                        {"change": "dropped", "column": "gone"},
                        {"change": "renamed", "column": "new_name", "from": "old_name"}):
        assert any(want_change.items() <= c.items() for c in changes), (want_change, changes)
    # each event of t after a schema event has its columns
    shape = None
    for e in events:
        if e["source"].get("table") != "t":
            continue
        if e["op"] == "s":
            shape = [c["name"] for c in e["schema"]["columns"]]
        elif e["op"] in ("c", "u") and shape and not e.get("unchanged"):
            assert sorted(e["after"]) == sorted(shape), (e, shape)
    # the new table's rows are there, from the first one
    want_late = {str(r[0]) for r in db.execute("SELECT id FROM tab_late")}
    wait_for(lambda: set(replay(p.events(), "tab_late")) == want_late, 90,
             what="the new table's rows in the events")
    assert p.stop() == 0


def test_a_table_without_a_key_that_comes_into_the_selection_stops_the_job_with_the_fix(
        tmp_path, db, target_db, make_job):
    """Its rows written before it joined the publication cannot be read by
    key while it streams: refused by name, never silently half-copied."""
    db.execute("CREATE TABLE t (id int PRIMARY KEY)")
    p = make_job("nokey", target=target_db.url, tables={"include": ["public.*"]})
    p.start()
    p.wait_streaming(db)
    db.execute("CREATE TABLE logs (at timestamptz DEFAULT now(), line text)")
    db.execute("INSERT INTO logs (line) VALUES ('one'), ('two')")
    p.proc.wait(timeout=60)
    assert p.proc.returncode == 2, p.stderr()
    log = p.stderr()
    assert "cannot take public.logs into the running job" in log, log
    assert "Add a primary key, or leave it out of the job (tables.exclude)" in log, log
    # a fix it names: a primary key; run again — the job goes on where it
    # stopped, and the table is copied whole
    db.execute("INSERT INTO t VALUES (1)")
    db.execute("ALTER TABLE logs ADD COLUMN id serial PRIMARY KEY")
    db.execute("INSERT INTO logs (line) VALUES ('three')")
    p.start()
    p.wait_streaming(db)
    settle(db, target_db, ["public.t", "public.logs"])
    assert p.stop() == 0
