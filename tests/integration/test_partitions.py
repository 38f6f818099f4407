"""Partitioned tables (issue 14, point 2): selected as one table with all
its partitions (wherever they live), published through the root, loaded one
partition a unit in parallel, created with the same partitioning in
PostgreSQL and as one plain table in SQLite; changes that hit any
partition (or move a row between partitions) arrive under the root.
"""
import json
import sqlite3
import subprocess

from conftest import BIN, wait_equal

SCHEMA = """
CREATE SCHEMA old;
CREATE TABLE measures (id bigint, at date, sensor int, value float8,
  PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
CREATE TABLE measures_2023 PARTITION OF measures FOR VALUES FROM ('2023-01-01') TO ('2024-01-01');
CREATE TABLE measures_2024 PARTITION OF measures FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE old.measures_before PARTITION OF measures FOR VALUES FROM (MINVALUE) TO ('2023-01-01');
CREATE INDEX measures_sensor ON measures (sensor);
INSERT INTO measures SELECT g, DATE '2022-06-01' + (g % 900), g % 10, g / 3.0
FROM generate_series(1, 3000) g;
CREATE TABLE logs (at timestamptz, line text) PARTITION BY LIST (line);
CREATE TABLE logs_err PARTITION OF logs FOR VALUES IN ('error');
CREATE TABLE logs_rest PARTITION OF logs DEFAULT;
INSERT INTO logs SELECT now(), CASE WHEN g % 3 = 0 THEN 'error' ELSE 'info ' || g END
FROM generate_series(1, 30) g;
ANALYZE;
"""


def changes(db):
    db.execute("INSERT INTO measures VALUES (5000, '2024-05-05', 1, 1.5), (5001, '2021-01-01', 2, 2.5)")
    db.execute("UPDATE measures SET value = -1 WHERE id % 100 = 0")
    db.execute("UPDATE measures SET at = DATE '2024-02-02' WHERE id = 7")    # moves partition
    db.execute("DELETE FROM measures WHERE sensor = 3 AND at < '2023-01-01'")
    db.execute("INSERT INTO logs VALUES (now(), 'error'), (now(), 'late')")


def test_a_partitioned_table_is_one_table_into_postgresql(tmp_path, db, target_db, make_job):
    db.execute(SCHEMA)
    p = make_job("parts", target=target_db.url, snapshot={"parallel": 3},
                 tables={"include": ["public.measures", "public.logs"]})
    # selected as two tables; the partition in schema old comes with its parent
    path = tmp_path / "check.json"
    path.write_text(json.dumps(p.spec))
    out = subprocess.run([BIN, "check", "--json", str(path)], capture_output=True, text=True,
                         timeout=120)
    items = {i["id"]: i for i in json.loads(out.stdout)["items"]}
    assert "2 tables selected: public.logs, public.measures" in items["source.tables"]["message"]
    # logs has no key: insert-only, named by the warning
    assert "public.logs" in items["source.keyless"]["message"]

    p.start()
    p.wait_streaming(db)
    log = p.stderr()
    assert "loaded public.measures: 3000 rows in 3 units" in log, log
    assert "loaded public.logs: 30 rows in 1 unit" in log, log     # no key: one unit
    # published through the root
    assert db.execute("SELECT pubname, tablename::text FROM pg_publication_tables ORDER BY 1") == \
        [("penstock_parts", "measures"), ("penstock_parts_inserts", "logs")]
    assert db.value("SELECT bool_and(pubviaroot) FROM pg_publication") is True
    changes(db)
    wait_equal(db, target_db, ["public.measures", "public.logs"])
    # the same partitioning, bounds and index, each partition in its schema
    tree = ("SELECT t.relid::regclass::text, t.parentrelid::regclass::text, t.isleaf, "
            "pg_get_expr(c.relpartbound, c.oid), pg_get_partkeydef(c.oid) "
            "FROM pg_partition_tree(%s) t JOIN pg_class c ON c.oid = t.relid ORDER BY 1")
    for root in ("measures", "logs"):
        assert target_db.execute(tree, (root,)) == db.execute(tree, (root,))
    assert target_db.value("SELECT count(*) FROM old.measures_before") == \
        db.value("SELECT count(*) FROM old.measures_before")
    idx = "SELECT indexrelid::regclass::text FROM pg_index WHERE indrelid = %s::regclass ORDER BY 1"
    assert target_db.execute(idx, ("measures_2024",)) == db.execute(idx, ("measures_2024",))
    assert p.stop() == 0


def test_a_partitioned_table_is_one_plain_table_in_sqlite(tmp_path, db, make_job):
    db.execute(SCHEMA)
    lite = str(tmp_path / "parts.db")
    p = make_job("partslite", target=f"sqlite://{lite}", tables={"include": ["public.measures"]})
    p.start()
    p.wait_streaming(db)
    changes(db)
    wait_equal(db, None, ["public.measures"], sqlite_path=lite)
    assert p.stop() == 0
    c = sqlite3.connect(lite)
    try:
        names = [r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                          "AND name NOT LIKE '\\_%' ESCAPE '\\' ORDER BY 1")]
    finally:
        c.close()
    assert names == ["measures"]


def test_a_partition_selected_without_its_parent_is_a_table_of_its_own(db, target_db, make_job):
    db.execute(SCHEMA)
    p = make_job("one", target=target_db.url, type="snapshot",
                 tables={"include": ["old.*"]})
    rc, _, err = p.run_to_exit()
    assert rc == 0, err
    assert target_db.value("SELECT relkind FROM pg_class WHERE oid = 'old.measures_before'::regclass") \
        == "r"
    assert target_db.value("SELECT to_regclass('public.measures')") is None
    wait_equal(db, target_db, ["old.measures_before"], timeout=5)
