"""Keys of any type (issue 14, point 5), into PostgreSQL and SQLite: a key
that is a composite type, a table whose replica identity is a unique index
and that has no primary key, a target-only column with its own default —
applied correctly, or refused at precheck with the reason; never a job
that starts and then dies at its first update. Rows are compared with the
source's after inserts, updates (of the key too) and deletes.
"""
import json
import sqlite3
import subprocess

import pytest

from conftest import BIN, Penstock, wait_equal, wait_for


@pytest.fixture
def jobs(tmp_path):
    """jobs(name, target_url, **spec) -> a started sync job in its own directory."""
    made = []

    def start(name, db, target, **extra):
        d = tmp_path / name
        d.mkdir()
        spec = {"name": name, "type": "sync", "source": {"url": db.url}, "target": {"url": target}}
        spec.update(extra)
        p = Penstock(d, spec)
        made.append(p)
        p.start()
        p.wait_streaming(db)
        return p
    yield start
    for p in made:
        if p.proc and p.proc.poll() is None:
            p.kill()


def sqlite_rows(path, sql):
    c = sqlite3.connect(path)
    try:
        return c.execute(sql).fetchall()
    finally:
        c.close()


def test_a_composite_type_key_is_updated_and_deleted(db, target_db, tmp_path, jobs):
    db.execute("CREATE TYPE pk2 AS (a int, b text)")
    db.execute("CREATE TABLE ck (k pk2 PRIMARY KEY, v text)")
    db.execute("INSERT INTO ck VALUES (ROW(1, 'x'), 'one'), (ROW(2, 'y'), 'two'), "
               "(ROW(3, 'it''s, \"q\"'), 'three')")
    lite = str(tmp_path / "ck.db")
    pg = jobs("ckpg", db, target_db.url)
    sq = jobs("cksq", db, f"sqlite://{lite}")
    db.execute("UPDATE ck SET v = 'uno' WHERE k = ROW(1, 'x')::pk2")
    db.execute("UPDATE ck SET k = ROW(4, 'z') WHERE k = ROW(2, 'y')::pk2")      # the key moves
    db.execute("UPDATE ck SET v = 'tres' WHERE (k).a = 3")
    db.execute("DELETE FROM ck WHERE k = ROW(1, 'x')::pk2")
    db.execute("INSERT INTO ck VALUES (ROW(5, NULL), 'five')")
    wait_equal(db, target_db, ["public.ck"])
    wait_equal(db, None, ["public.ck"], sqlite_path=lite)
    assert pg.stop() == 0 and sq.stop() == 0
    assert target_db.execute("SELECT k::text, v FROM ck ORDER BY v") == \
        db.execute("SELECT k::text, v FROM ck ORDER BY v")


def test_replica_identity_using_index_without_primary_key(db, target_db, tmp_path, jobs):
    db.execute("CREATE TABLE ri (a int NOT NULL, b int NOT NULL, v text)")
    db.execute("CREATE UNIQUE INDEX ri_ab ON ri (a, b)")
    db.execute("ALTER TABLE ri REPLICA IDENTITY USING INDEX ri_ab")
    db.execute("INSERT INTO ri SELECT g, g, 'v' || g FROM generate_series(1, 20) g")
    lite = str(tmp_path / "ri.db")
    pg = jobs("ripg", db, target_db.url)
    sq = jobs("risq", db, f"sqlite://{lite}")
    # an update that keeps the identity sends no old row: the key is its new values
    db.execute("UPDATE ri SET v = 'changed' WHERE a <= 5")
    db.execute("UPDATE ri SET b = b + 100 WHERE a = 6")                 # identity moves
    db.execute("DELETE FROM ri WHERE a IN (7, 8)")
    db.execute("INSERT INTO ri VALUES (30, 30, 'new')")
    wait_equal(db, target_db, ["public.ri"])
    wait_equal(db, None, ["public.ri"], sqlite_path=lite)
    assert pg.stop() == 0 and sq.stop() == 0
    # the target's replica identity is the same index, as on the source
    assert target_db.execute("SELECT c.relreplident, i.relname FROM pg_class c "
                             "JOIN pg_index x ON x.indrelid = c.oid AND x.indisreplident "
                             "JOIN pg_class i ON i.oid = x.indexrelid WHERE c.relname = 'ri'") \
        == [("i", "ri_ab")]
    # SQLite finds rows by the index's columns: they are its primary key
    assert [r[1] for r in sqlite_rows(lite, "PRAGMA table_info(ri)") if r[5]] == ["a", "b"]


def test_a_target_only_column_keeps_its_default(db, target_db, jobs):
    db.execute("CREATE TABLE orders (id int PRIMARY KEY, qty int, note text)")
    db.execute("INSERT INTO orders VALUES (1, 1, 'a'), (2, 2, 'b')")
    target_db.execute("CREATE TABLE orders (id int PRIMARY KEY, qty int, note text, "
                      "imported_at timestamptz NOT NULL DEFAULT now(), "
                      "origin text NOT NULL DEFAULT 'penstock')")
    p = jobs("extra", db, target_db.url)
    db.execute("INSERT INTO orders VALUES (3, 3, 'c')")
    db.execute("UPDATE orders SET qty = 10 WHERE id = 1")
    db.execute("UPDATE orders SET id = 20 WHERE id = 2")
    db.execute("DELETE FROM orders WHERE id = 3")
    db.execute("INSERT INTO orders VALUES (4, 4, 'd')")
    wait_for(lambda: target_db.execute("SELECT id, qty, note FROM orders ORDER BY id") ==
             db.execute("SELECT id, qty, note FROM orders ORDER BY id"), what="orders equal")
    assert p.stop() == 0
    assert target_db.execute("SELECT DISTINCT origin, imported_at IS NOT NULL FROM orders") == \
        [("penstock", True)]


def test_a_target_only_not_null_column_without_default_is_refused_at_precheck(tmp_path, db,
                                                                            target_db):
    db.execute("CREATE TABLE orders (id int PRIMARY KEY, qty int)")
    db.execute("INSERT INTO orders VALUES (1, 1)")
    target_db.execute("CREATE TABLE orders (id int PRIMARY KEY, qty int, batch int NOT NULL)")
    spec = {"name": "nn", "type": "cdc", "source": {"url": db.url},
            "target": {"url": target_db.url}}
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    p = subprocess.run([BIN, "check", "--json", str(path)], capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 4, p.stdout + p.stderr
    it = {i["id"]: i for i in json.loads(p.stdout)["items"]}["target.tables"]
    assert it["result"] == "failed"
    assert "column batch of public.orders (only in the target, NOT NULL, no default)" in it["message"]
    assert 'ALTER TABLE "public"."orders" ALTER COLUMN "batch" SET DEFAULT' in it["fix"]
    # a load job refuses it before it writes anything
    spec["type"] = "sync"
    path.write_text(json.dumps(spec))
    r = subprocess.run([BIN, "run", "--state-dir", str(tmp_path / "st"), str(path)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode != 0
    assert "column batch, which the source does not send and which is NOT NULL without a " \
           "default" in r.stderr
    assert target_db.value("SELECT count(*) FROM orders") == 0
    # the fix the precheck gave works
    target_db.execute('ALTER TABLE "public"."orders" ALTER COLUMN "batch" SET DEFAULT 0')
    spec["type"] = "cdc"
    path.write_text(json.dumps(spec))
    p = subprocess.run([BIN, "check", "--json", str(path)], capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, p.stdout
