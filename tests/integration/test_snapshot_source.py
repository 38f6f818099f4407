"""Initial-load side of the PostgreSQL source (describe, split, exported
snapshots, copy), driven through the core's plugin wrappers by the test tool
tests/tools/snapdump.c, against a real PostgreSQL 15.

Expected values come from the server: catalog functions for definitions,
SELECTs of the tables for rows, format('%s', ...) in a session with
penstock's own settings for the text of every type.
"""
import json
import math
import os
import pathlib
import re
import subprocess

import psycopg2
import pytest

from conftest import ROOT, wait_for
from test_stream import TYPE_ZOO, TYPE_ZOO_ROW

TOOLS = pathlib.Path(os.environ.get("PENSTOCK_TOOLS", str(ROOT / "build" / "tools")))
SNAPDUMP = str(TOOLS / "snapdump")


def session_options():
    """PG_SESSION_OPTIONS as src/util/pgconn.h defines it (the source of truth)."""
    text = (ROOT / "src" / "util" / "pgconn.h").read_text()
    macro = re.search(r"#define PG_SESSION_OPTIONS((?:.*\\\n)*.*)", text).group(1)
    return "".join(re.findall(r'"([^"]*)"', macro))


class Dump:
    """The parsed output of one snapdump run."""

    def __init__(self, returncode, stdout, stderr):
        self.returncode = returncode
        self.stderr = stderr
        self.prepare = self.export = self.done = None
        self.defs = []                      # in output order
        self.rows = {}                      # "schema.table" -> [(unit, row)]
        for line in stdout.splitlines():
            obj = json.loads(line)
            if "prepare" in obj:
                self.prepare = obj["prepare"]
            elif "export" in obj:
                self.export = obj["export"]
            elif "done" in obj:
                self.done = obj["done"]
            elif "def" in obj:
                self.defs.append(obj["def"] | {"table": obj["table"]})
            else:
                self.rows.setdefault(obj["table"], []).append((obj["unit"], obj["row"]))

    def ok(self):
        assert self.returncode == 0, self.stderr
        return self

    def deff(self, table):
        return next(d for d in self.defs if d["table"] == table)

    def table_rows(self, table):
        return [r for _, r in self.rows.get(table, [])]


def snapdump(db, *args, env=None, timeout=180):
    p = subprocess.run([SNAPDUMP, db.url, *args], capture_output=True, text=True,
                       timeout=timeout, env=dict(os.environ, **(env or {})))
    return Dump(p.returncode, p.stdout, p.stderr)


class Paused:
    """A snapdump run stopped at its pause point (after prepare/export)."""

    def __init__(self, db, tmp_path, *args):
        self.pause = tmp_path / "go"
        self.ready = tmp_path / "go.ready"
        self.out = open(tmp_path / "stdout", "w+")
        self.err = open(tmp_path / "stderr", "w+")
        self.proc = subprocess.Popen([SNAPDUMP, db.url, *args], stdout=self.out, stderr=self.err,
                                     env=dict(os.environ, SNAPDUMP_PAUSE_FILE=str(self.pause)))
        wait_for(self._ready, timeout=60, what="snapdump to reach its pause point")
        self.info = [json.loads(line) for line in self.ready.read_text().splitlines()]

    def _ready(self):
        if self.proc.poll() is not None:
            self.err.seek(0)
            raise AssertionError(f"snapdump exited with {self.proc.returncode}: {self.err.read()}")
        return self.ready.exists()

    def resume(self, timeout=120):
        self.pause.write_text("")
        self.proc.wait(timeout=timeout)
        self.out.seek(0)
        self.err.seek(0)
        return Dump(self.proc.returncode, self.out.read(), self.err.read())

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def paused(db, tmp_path):
    made = []

    def make(*args):
        p = Paused(db, tmp_path, *args)
        made.append(p)
        return p

    yield make
    for p in made:
        p.kill()


def server_texts(db, table, cols, order_by):
    """Every row of table as the server's output functions write it, in a
    session with penstock's settings; NULL stays None."""
    conn = psycopg2.connect(host="127.0.0.1", port=db.cluster.port, dbname=db.name,
                            user="postgres", options=session_options())
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT " + ", ".join(
                f'CASE WHEN "{c}" IS NULL THEN NULL ELSE format(\'%s\', "{c}") END'
                for c in cols) + f" FROM {table} ORDER BY {order_by}")
            return [list(r) for r in cur.fetchall()]
    finally:
        conn.close()


def lsn_le(db, a, b):
    return db.value("SELECT %s::pg_lsn <= %s::pg_lsn", (a, b))


# --- describe ---------------------------------------------------------------

SCHEMA = """
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN posint AS int CHECK (VALUE > 0);
CREATE TABLE items (
  id serial PRIMARY KEY,
  name varchar(40) NOT NULL DEFAULT 'nameless',
  qty int CHECK (qty >= 0),
  code text UNIQUE,
  gone int,
  price numeric(12,2) DEFAULT 0,
  m mood, ms mood[], p posint, tags text[],
  total numeric GENERATED ALWAYS AS (qty * price) STORED,
  made timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE items DROP COLUMN gone;
CREATE INDEX items_lower_name ON items (lower(name));
CREATE UNIQUE INDEX items_qty_code ON items (qty, code);
CREATE INDEX items_big ON items (qty) WHERE qty > 100;
CREATE TABLE comp (a text, b int, v text, PRIMARY KEY (b, a));
CREATE TABLE ident_a (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, v text);
CREATE TABLE ident_d (id int GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
                      n bigserial, UNIQUE (n, id));
CREATE TABLE nopk (x int, y text);
ALTER TABLE nopk REPLICA IDENTITY FULL;
CREATE SCHEMA app;
CREATE TABLE app.aaa (id int PRIMARY KEY);
INSERT INTO items (name, qty, code, price) SELECT 'n' || g, g, 'c' || g, g FROM generate_series(1, 30) g;
INSERT INTO comp SELECT 'k' || g, g % 3, NULL FROM generate_series(1, 10) g;
ANALYZE items; ANALYZE comp;
"""


def catalog_columns(db, table):
    return db.execute(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.atttypid::int, a.atttypmod, "
        "  a.attnotnull, nullif(a.attidentity, ''), pg_get_expr(d.adbin, d.adrelid) "
        "FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid "
        "  AND d.adnum = a.attnum "
        "WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped "
        "  AND a.attgenerated = '' ORDER BY a.attnum", (table,))


def test_describe_matches_the_catalog(db):
    db.execute(SCHEMA)
    d = snapdump(db).ok()
    tables = [r[0] for r in db.execute(
        "SELECT n.nspname || '.' || c.relname FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind = 'r' AND n.nspname IN ('public', 'app') ORDER BY n.nspname, c.relname")]
    assert [x["table"] for x in d.defs] == tables          # ordered by schema, then name
    assert d.prepare["ntables"] == len(tables)

    for t in tables:
        dd = d.deff(t)
        assert dd["engine"] == "postgresql"
        assert dd["oid"] == db.value("SELECT %s::regclass::oid::int", (t,))
        assert dd["replica_identity"] == db.value(
            "SELECT relreplident FROM pg_class WHERE oid = %s::regclass", (t,))
        cols = catalog_columns(db, t)
        assert [c["name"] for c in dd["columns"]] == [c[0] for c in cols]
        for got, (name, sql_type, oid, mod, not_null, ident, default) in zip(dd["columns"], cols):
            assert got["sql_type"] == sql_type, (t, name)
            assert got["type_oid"] == oid and got["type_mod"] == mod, (t, name)
            assert got["not_null"] == not_null, (t, name)
            assert got["identity"] == ident, (t, name)
            assert got["default"] == default, (t, name)
        key = db.execute(
            "SELECT a.attname FROM pg_index i "
            "CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY k(attnum, ord) "
            "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
            "WHERE i.indrelid = %s::regclass AND i.indisprimary ORDER BY k.ord", (t,))
        assert dd["key"] == [k[0] for k in key]
        assert dd["has_primary_key"] == bool(key)
        assert [c["name"] for c in dd["columns"] if c["is_key"]] == \
            [c[0] for c in cols if c[0] in dd["key"]]
        assert dd["estimated_bytes"] == db.value("SELECT pg_relation_size(%s::regclass)", (t,))
        tuples = db.value("SELECT reltuples FROM pg_class WHERE oid = %s::regclass", (t,))
        assert dd["estimated_rows"] == (-1 if tuples < 0 else round(tuples))

    items = d.deff("public.items")
    by_name = {c["name"]: c for c in items["columns"]}
    assert "gone" not in by_name and "total" not in by_name     # dropped, generated
    assert "generated column total is left out" in d.stderr
    assert by_name["id"]["sequence"] == '"public"."items_id_seq"'
    assert db.value("SELECT pg_get_serial_sequence('items', 'id')") == "public.items_id_seq"
    assert by_name["id"]["default"] == "nextval('items_id_seq'::regclass)"
    assert all(by_name[c]["sequence"] is None for c in by_name if c != "id")
    assert [c for c in by_name if by_name[c]["user_type"]] == ["m", "ms", "p"]
    assert by_name["id"]["type_class"] == 2 and by_name["price"]["type_class"] == 4
    assert items["estimated_rows"] == 30
    assert d.deff("public.nopk")["estimated_rows"] == -1        # never analyzed

    # constraints: p, u, c from pg_get_constraintdef, then the indexes that back
    # none, with their whole CREATE INDEX statement
    expected = db.execute(
        "SELECT conname, contype::text, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = 'items'::regclass ORDER BY CASE contype WHEN 'p' THEN 0 "
        "WHEN 'u' THEN 1 ELSE 2 END, conname")
    expected += db.execute(
        "SELECT c.relname, 'i', pg_get_indexdef(c.oid) FROM pg_index i "
        "JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = 'items'::regclass "
        "AND c.relname IN ('items_big', 'items_lower_name', 'items_qty_code') ORDER BY 1")
    got = [(k["name"], k["kind"], k["sql"]) for k in items["constraints"]]
    assert got == [tuple(e) for e in expected]
    cols = {k["name"]: k["cols"] for k in items["constraints"]}
    assert cols["items_pkey"] == ["id"]
    assert cols["items_code_key"] == ["code"]
    assert cols["items_qty_check"] == []
    assert cols["items_qty_code"] == ["qty", "code"]
    assert cols["items_lower_name"] == []              # expression index
    assert cols["items_big"] == []                     # partial index
    assert "CREATE INDEX items_lower_name ON public.items" in dict(
        (k["name"], k["sql"]) for k in items["constraints"])["items_lower_name"]

    comp = d.deff("public.comp")
    assert comp["key"] == ["b", "a"]                   # key order, not column order
    assert [c["is_key"] for c in comp["columns"]] == [True, True, False]
    ident_a, ident_d = d.deff("public.ident_a"), d.deff("public.ident_d")
    assert ident_a["columns"][0]["identity"] == "a" and ident_a["columns"][0]["sequence"] is None
    assert ident_d["columns"][0]["identity"] == "d" and ident_d["columns"][0]["sequence"] is None
    assert ident_d["columns"][1]["sequence"] == '"public"."ident_d_n_seq"'
    assert {k["name"]: k["cols"] for k in ident_d["constraints"]}["ident_d_n_id_key"] == ["n", "id"]
    nopk = d.deff("public.nopk")
    assert nopk["has_primary_key"] is False and nopk["key"] == [] and nopk["constraints"] == []
    assert nopk["replica_identity"] == "f"

    # every table copied whole, rows equal to the table's
    for t in tables:
        cols = [c["name"] for c in d.deff(t)["columns"]]
        want = server_texts(db, t, cols, "1") if cols else []
        assert sorted(d.table_rows(t), key=str) == sorted(want, key=str), t
    assert d.done["rows"] == sum(len(d.table_rows(t)) for t in tables)


def test_tables_option_selects_and_slot_is_dropped(db):
    db.execute("CREATE TABLE keep (id int PRIMARY KEY); CREATE TABLE skip (id int PRIMARY KEY)")
    d = snapdump(db, "--tables", "public.keep").ok()
    assert [x["table"] for x in d.defs] == ["public.keep"]
    assert d.prepare["created"] is True and d.prepare["snapshot"]
    assert db.value("SELECT count(*) FROM pg_replication_slots "
                    "WHERE database = current_database()") == 0
    assert db.value("SELECT count(*) FROM pg_publication") == 0


# --- values ------------------------------------------------------------------

def test_type_zoo_text_matches_the_servers(db):
    db.execute(TYPE_ZOO)
    db.execute(TYPE_ZOO_ROW)
    db.execute("INSERT INTO zoo (id) VALUES (2)")            # every other column NULL
    db.execute("INSERT INTO zoo (id, f4, f8, fnan, num, txt, tarr, by) VALUES "
               "(3, '-Infinity', 1e308, 'Infinity', 'NaN', '', '{}', '')")
    d = snapdump(db).ok()
    cols = [c["name"] for c in d.deff("public.zoo")["columns"]]
    assert cols == [r[0] for r in db.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = 'zoo'::regclass AND attnum > 0 "
        "AND NOT attisdropped ORDER BY attnum")]
    want = server_texts(db, "zoo", cols, "id")
    got = sorted(d.table_rows("public.zoo"), key=lambda r: int(r[0]))
    assert len(got) == 3
    for g, w in zip(got, want):
        for col, gv, wv in zip(cols, g, w):
            assert gv == wv, (g[0], col)
    assert got[0][cols.index("by")] == "\\x00ff00"
    assert got[2][cols.index("txt")] == "" and got[1][cols.index("txt")] is None


TRICKY = [
    "tab\there", "new\nline", "cr\rreturn", "back\\slash", "\\N", "\\", "\\\\N", "",
    "trailing tab\t", "\t", "\n", "quote ' \" both", "\b\f\v controls", "emoji \U0001F600 é",
    "x" * 70000, None,
]


def test_tricky_text_round_trips(db):
    db.execute("CREATE TABLE tricky (id int PRIMARY KEY, t text, t2 text, n int)")
    with db.conn.cursor() as cur:
        for i, v in enumerate(TRICKY):
            cur.execute("INSERT INTO tricky VALUES (%s, %s, %s, NULL)", (i, v, v))
    d = snapdump(db).ok()
    want = [[str(r[0]), r[1], r[2], None] for r in db.execute("SELECT * FROM tricky ORDER BY id")]
    got = sorted(d.table_rows("public.tricky"), key=lambda r: int(r[0]))
    assert got == want
    assert got[TRICKY.index("")][1] == "" and got[TRICKY.index(None)][1] is None


# --- split ----------------------------------------------------------------------

def test_split_50k_rows_covers_every_row_once(db):
    db.execute("CREATE TABLE big (id int PRIMARY KEY, v text)")
    db.execute("INSERT INTO big SELECT g * 3, 'v' || g FROM generate_series(1, 50000) g")
    db.execute("ANALYZE big")
    d = snapdump(db, "--chunk-rows", "5000").ok()
    dd = d.deff("public.big")
    est = dd["estimated_rows"]
    assert est == round(db.value("SELECT reltuples FROM pg_class WHERE relname = 'big'"))
    bounds = [int(b[0]) for b in dd["bounds"]]
    assert len(bounds) == math.ceil(est / 5000) - 1
    assert bounds == sorted(set(bounds))                 # strictly ascending
    units = d.rows["public.big"]
    got = sorted((int(r[0]), r[1]) for _, r in units)
    want = [(r[0], r[1]) for r in db.execute("SELECT id, v FROM big ORDER BY id")]
    assert got == want                                   # none missing, none twice
    edges = [None] + bounds + [None]
    counts = [0] * (len(bounds) + 1)
    for unit, row in units:
        k = int(row[0])
        assert edges[unit] is None or k >= edges[unit]
        assert edges[unit + 1] is None or k < edges[unit + 1]
        counts[unit] += 1
    assert all(0 < c < 2.5 * 5000 for c in counts), counts
    assert d.done["units"] == len(bounds) + 1


def test_split_composite_text_key(db):
    # text keys with characters that would break SQL if pasted in
    db.execute("CREATE TABLE ck (grp text, n int, v int, PRIMARY KEY (grp, n))")
    db.execute("INSERT INTO ck SELECT (ARRAY['a''b', E'c\\\\d', E't\\tx', 'z \"q\"'])[g % 4 + 1], "
               "g, g FROM generate_series(1, 12000) g")
    db.execute("ANALYZE ck")
    d = snapdump(db, "--chunk-rows", "2000").ok()
    bounds = d.deff("public.ck")["bounds"]
    assert len(bounds) == math.ceil(d.deff("public.ck")["estimated_rows"] / 2000) - 1
    for lo, hi in zip(bounds, bounds[1:]):               # ascending in the server's order
        assert db.value("SELECT (%s::text, %s::int) < (%s::text, %s::int)",
                        (lo[0], lo[1], hi[0], hi[1])), (lo, hi)
    got = sorted((r[0], int(r[1]), int(r[2])) for r in d.table_rows("public.ck"))
    assert got == sorted(tuple(r) for r in db.execute("SELECT grp, n, v FROM ck"))
    assert len({u for u, _ in d.rows["public.ck"]}) == len(bounds) + 1


def test_small_or_keyless_tables_are_one_unit(db):
    db.execute("CREATE TABLE small (id int PRIMARY KEY); "
               "INSERT INTO small SELECT generate_series(1, 50); ANALYZE small")
    db.execute("CREATE TABLE heap (x int); ALTER TABLE heap REPLICA IDENTITY FULL; "
               "INSERT INTO heap SELECT generate_series(1, 500); ANALYZE heap")
    d = snapdump(db, "--chunk-rows", "100").ok()
    assert d.deff("public.small")["bounds"] == []
    assert d.deff("public.heap")["bounds"] == []         # no primary key: never split
    assert sorted(int(r[0]) for r in d.table_rows("public.heap")) == list(range(1, 501))
    assert d.done["units"] == 2


# --- snapshots ---------------------------------------------------------------

def change_after_snapshot(db):
    """Inserts, updates and deletes after the snapshot; returns the WAL
    position before the first of them."""
    before = db.value("SELECT pg_current_wal_lsn()::text")
    db.execute("INSERT INTO acct SELECT g, 'late' FROM generate_series(101, 110) g")
    db.execute("UPDATE acct SET v = 'changed' WHERE id = 1")
    db.execute("DELETE FROM acct WHERE id = 2")
    return before


def assert_copy_is_the_old_state(db, d, original):
    got = sorted((int(r[0]), r[1]) for r in d.table_rows("public.acct"))
    assert got == original
    now = sorted(db.execute("SELECT id, v FROM acct"))
    assert now != original and (101, "late") in now    # the changes did happen


def test_copy_sees_the_slots_snapshot(db, paused):
    db.execute("CREATE TABLE acct (id int PRIMARY KEY, v text)")
    db.execute("INSERT INTO acct SELECT g, 'v' || g FROM generate_series(1, 100) g")
    original = sorted(db.execute("SELECT id, v FROM acct"))
    p = paused("--chunk-rows", "30")
    prep = p.info[0]["prepare"]
    assert prep["created"] and prep["snapshot"]
    before = change_after_snapshot(db)
    assert lsn_le(db, prep["point"], before)
    # while the snapshot is held, another session can import it too
    conn = db.cluster.connect(db.name)
    try:
        conn.autocommit = False
        with conn.cursor() as cur:
            cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            cur.execute("SET TRANSACTION SNAPSHOT %s", (prep["snapshot"],))
            cur.execute("SELECT count(*) FROM acct")
            assert cur.fetchone()[0] == 100
        conn.rollback()
    finally:
        conn.close()
    d = p.resume().ok()
    assert d.prepare == prep
    assert_copy_is_the_old_state(db, d, original)


def test_exported_snapshot_for_a_recopy(db, paused):
    db.execute("CREATE TABLE acct (id int PRIMARY KEY, v text)")
    db.execute("INSERT INTO acct SELECT g, 'v' || g FROM generate_series(1, 100) g")
    original = sorted(db.execute("SELECT id, v FROM acct"))
    p = paused("--export")
    prep, exp = p.info[0]["prepare"], p.info[1]["export"]
    assert exp["name"] and exp["name"] != prep["snapshot"]
    assert re.fullmatch(r"[0-9A-F]+/[0-9A-F]+", exp["point"])
    assert lsn_le(db, prep["point"], exp["point"])
    slot = f"snapdump_{p.proc.pid}_snap_{p.proc.pid}"
    assert db.execute("SELECT temporary, plugin FROM pg_replication_slots WHERE slot_name = %s",
                      (slot,)) == [(True, "pgoutput")]
    before = change_after_snapshot(db)
    assert lsn_le(db, exp["point"], before)
    d = p.resume().ok()
    assert_copy_is_the_old_state(db, d, original)
    assert "exported snapshot " + exp["name"] in d.stderr
    # released: the temporary slot went with its session
    assert db.value("SELECT count(*) FROM pg_replication_slots "
                    "WHERE database = current_database()") == 0


# --- errors -----------------------------------------------------------------

def test_failing_row_callback_cancels_the_copy(db):
    db.execute("CREATE TABLE big (id int PRIMARY KEY, v text)")
    db.execute("INSERT INTO big SELECT g, repeat('x', 50) FROM generate_series(1, 50000) g")
    db.execute("ANALYZE big")
    d = snapdump(db, "--chunk-rows", "5000", env={"SNAPDUMP_FAIL_AFTER": "10"})
    assert d.returncode == 1
    assert "copying public.big" in d.stderr and "SNAPDUMP_FAIL_AFTER" in d.stderr
    assert d.done is None
    assert 10 <= len(d.table_rows("public.big")) <= 20   # at most 10 per worker
    assert db.value("SELECT count(*) FROM pg_stat_activity "
                    "WHERE application_name LIKE 'penstock copy%%'") == 0
    assert db.value("SELECT count(*) FROM pg_replication_slots "
                    "WHERE database = current_database()") == 0
