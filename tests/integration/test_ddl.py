"""Schemas that change while a job runs (issue 15)."""
import json
import signal

from conftest import pg_rows, wait_equal, wait_for


def test_smoke_add_column(tmp_path, db, target_db, make_job):
    db.execute("CREATE TABLE t (id int PRIMARY KEY, v int)")
    db.execute("INSERT INTO t SELECT g, g FROM generate_series(1, 10) g")
    p = make_job("ddl", target=target_db.url)
    p.start()
    p.wait_streaming(db)
    db.execute("INSERT INTO t VALUES (11, 11)")
    db.execute("ALTER TABLE t ADD COLUMN c text DEFAULT 'x' NOT NULL")
    db.execute("INSERT INTO t VALUES (12, 12, 'y')")
    db.execute("ALTER TABLE t ALTER COLUMN v TYPE bigint")
    db.execute("INSERT INTO t VALUES (13, 6000000000, 'z')")
    wait_equal(db, target_db, ["public.t"])
    assert p.stop() == 0
    print(p.stderr())
