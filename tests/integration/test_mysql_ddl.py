"""Schema changes followed into a MariaDB target (issue 15's contract for the
issue 17 sink; docs/ddl.md): PostgreSQL -> MariaDB with a concurrent writer,
with penstock running and killed with kill -9 right after the change, every
row compared; tables the user made stop the job with the fix."""
import os
import pytest

from conftest import wait_for
from mysql_target import new_database, rows_equal, url_of
from test_ddl import Churn, drive, new_tables, new_tables_after

MODES = ["running", "killed"]
_n = [0]


@pytest.fixture
def tdb(mariadb):
    _n[0] += 1
    return new_database(mariadb, f"ddl{_n[0]}_{os.getpid()}")


def settle_maria(db, m, tdb, tables, timeout=120, p=None):
    """wait_equal_maria, where the target's columns may change under the
    comparison (penstock is altering them): a failed read is a "not yet".
    With p, penstock exiting meanwhile fails at once with its log."""
    last = {}

    def equal():
        if p is not None and p.proc.poll() is not None:
            raise AssertionError(f"penstock exited {p.proc.returncode}: {p.stderr()}")
        for t in tables:
            try:
                same, src, dst = rows_equal(db, m, tdb, t)
            except Exception as e:     # a column not there yet, a table being altered
                last.update(table=t, error=repr(e))
                return False
            if not same:
                last.update(table=t, counts=(len(src), len(dst)),
                            missing=sorted(set(src) - set(dst), key=repr)[:3],
                            extra=sorted(set(dst) - set(src), key=repr)[:3])
                return False
        return True
    try:
        wait_for(equal, timeout, interval=0.3, what="the MariaDB target to equal the source")
    except AssertionError as e:
        raise AssertionError(f"{e}: {last}") from None


def columns_of(m, tdb, table):
    return m.execute("SELECT COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, COLUMN_DEFAULT FROM "
                     "information_schema.COLUMNS WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s "
                     "ORDER BY ORDINAL_POSITION", (tdb, table))


SCHEMA = """
CREATE TABLE t (id int PRIMARY KEY, n int NOT NULL DEFAULT 0, v int, gone text, old_name text);
INSERT INTO t SELECT g, 0, g, 'g' || g, 'o' || g FROM generate_series(1, 200) g;
"""


def column_changes(db):
    """Rows before, during and after each change (Churn writes t meanwhile)."""
    x = db.execute
    x("INSERT INTO t (id, v, gone, old_name) VALUES (1001, 1, 'a', 'b')")
    # a column added with a constant default: older rows get it
    x("ALTER TABLE t ADD COLUMN added text NOT NULL DEFAULT 'dflt'")
    x("INSERT INTO t (id, added) VALUES (1002, 'mine')")
    x("UPDATE t SET added = 'upd' WHERE id % 17 = 0")
    # int -> bigint, and a value only bigint holds, in the changing transaction
    x("BEGIN; ALTER TABLE t ALTER COLUMN v TYPE bigint; "
      "INSERT INTO t (id, v) VALUES (1003, 6000000000); COMMIT")
    x("UPDATE t SET v = v * 1000000000 WHERE id BETWEEN 10 AND 20")
    # a column added without a default, one given a default later
    x("ALTER TABLE t ADD COLUMN opt int")
    x("ALTER TABLE t ALTER COLUMN opt SET DEFAULT 3")
    x("INSERT INTO t (id, v) VALUES (1004, 4)")
    # dropped and renamed (a rename keeps the column's data)
    x("ALTER TABLE t DROP COLUMN gone")
    x("INSERT INTO t (id, v) VALUES (1005, 5)")
    x("ALTER TABLE t RENAME COLUMN old_name TO new_name")
    x("UPDATE t SET new_name = 'renamed' WHERE id % 5 = 0")
    x("INSERT INTO t (id, v, new_name) VALUES (1006, 6, 'last')")


@pytest.mark.parametrize("mode", MODES)
def test_columns_added_retyped_dropped_renamed_follow_into_mariadb(
        mode, db, mariadb, tdb, make_job):
    db.execute(SCHEMA)
    p = make_job("cols", target=url_of(mariadb, tdb))
    p.start()
    p.wait_streaming(db)
    churn = Churn(db, "t")
    churn.start()
    try:
        drive(p, db, mode, lambda: column_changes(db), seen="follows the source")
    finally:
        churn.stop()
    settle_maria(db, mariadb, tdb, ["public.t"])
    cols = {c[0]: c[1:] for c in columns_of(mariadb, tdb, "t")}
    assert list(cols) == ["id", "n", "v", "new_name", "added", "opt"], cols
    assert cols["v"][0] == "bigint(20)", cols
    assert cols["added"] == ("longtext", "NO", "'dflt'"), cols
    assert cols["opt"][2] == "3", cols
    # the rows the table held when a column came got what the source's got
    assert mariadb.execute("SELECT COUNT(*) FROM t WHERE opt IS NULL AND id <= 200",
                           database=tdb)[0][0] == \
        db.value("SELECT count(*) FROM t WHERE opt IS NULL AND id <= 200")
    assert p.stop() == 0
    log = p.stderr()
    assert "refused" not in log and "error" not in log.lower(), log


@pytest.mark.parametrize("mode", MODES)
def test_a_table_created_mid_stream_is_created_in_mariadb_and_copied(
        mode, db, mariadb, tdb, make_job):
    db.execute("CREATE TABLE t (id int PRIMARY KEY, n int NOT NULL DEFAULT 0);"
               "INSERT INTO t SELECT g, 0 FROM generate_series(1, 50) g;")
    p = make_job("late", target=url_of(mariadb, tdb), tables={"include": ["public.*"]})
    p.start()
    p.wait_streaming(db)
    churn = Churn(db, "t")
    churn.start()
    try:
        drive(p, db, mode, lambda: new_tables(db), seen="came into the selection")
        new_tables_after(db)
    finally:
        churn.stop()
    settle_maria(db, mariadb, tdb, ["public.t", "public.tab_late", "public.tab_txn"])
    assert mariadb.execute("SELECT COUNT(*) FROM information_schema.TABLES WHERE "
                           "TABLE_NAME = 'outside'")[0][0] == 0
    # created as a load would: the key with the table
    assert mariadb.execute("SELECT COUNT(*) FROM information_schema.STATISTICS WHERE "
                           "TABLE_SCHEMA = %s AND TABLE_NAME = 'tab_late' AND "
                           "INDEX_NAME = 'PRIMARY'", (tdb,))[0][0] == 1
    assert p.stop() == 0


def test_a_table_the_user_made_stops_the_job_at_the_change_with_the_fix(
        db, mariadb, tdb, make_job):
    db.execute("CREATE TABLE t (id int PRIMARY KEY, v int)")
    db.execute("INSERT INTO t SELECT g, g FROM generate_series(1, 100) g")
    mariadb.execute("CREATE TABLE t (id int PRIMARY KEY, v int, mine text DEFAULT 'kept')",
                    database=tdb)
    p = make_job("users", target=url_of(mariadb, tdb))
    p.spec["target"]["create_tables"] = "never"
    p.write_spec()
    p.start()
    p.wait_streaming(db)
    db.execute("ALTER TABLE t ADD COLUMN added int DEFAULT 5")
    db.execute("INSERT INTO t (id, v, added) VALUES (102, 2, 6)")
    wait_for(lambda: p.proc.poll() is not None, 60, what="penstock to stop at the change")
    assert p.proc.returncode == 2, p.stderr()
    msg = " ".join(p.stderr().split())
    for words in ("table public.t changed on the source", "column added",
                  "Its target table was not created by penstock", "target.follow_ddl: created",
                  "--strategy retry", "follow_ddl to all"):
        assert words in msg, msg
    assert mariadb.execute("SELECT COUNT(*) FROM t WHERE id = 102", database=tdb)[0][0] == 0
    # the user follows it and runs the job again: nothing lost, nothing twice
    mariadb.execute("ALTER TABLE t ADD COLUMN added int DEFAULT 5", database=tdb)
    p.start()
    p.wait_streaming(db)
    wait_for(lambda: mariadb.execute("SELECT added FROM t WHERE id = 102", database=tdb)
             == ((6,),), 60, what="the row after the change")
    total, kept = mariadb.execute("SELECT COUNT(*), SUM(mine = 'kept') FROM t", database=tdb)[0]
    assert (int(total), int(kept)) == (101, 101)
    assert p.stop() == 0


def test_a_change_after_rows_of_the_table_in_one_transaction_stops_with_the_fix(
        db, mariadb, tdb, make_job):
    """MariaDB commits around ALTER TABLE: rows of the table written before
    the change in the same source transaction cannot stay uncommitted
    across it, so the job stops there; the user's own ALTER then lets it go
    on with nothing lost or applied twice."""
    db.execute("CREATE TABLE t (id int PRIMARY KEY, v int)")
    db.execute("INSERT INTO t SELECT g, g FROM generate_series(1, 100) g")
    p = make_job("midtxn", target=url_of(mariadb, tdb))
    p.start()
    p.wait_streaming(db)
    db.execute("BEGIN; INSERT INTO t VALUES (101, 1); ALTER TABLE t ADD COLUMN c int; "
               "INSERT INTO t VALUES (102, 2, 3); COMMIT")
    wait_for(lambda: p.proc.poll() is not None, 60, what="penstock to stop at the change")
    assert p.proc.returncode == 2, p.stderr()
    msg = " ".join(p.stderr().split())
    for words in ("table public.t changed on the source", "column c INT added",
                  "wrote rows of it before the change", "--strategy retry", "resync"):
        assert words in msg, msg
    assert mariadb.execute("SELECT COUNT(*) FROM t WHERE id > 100", database=tdb)[0][0] == 0
    mariadb.execute("ALTER TABLE t ADD COLUMN c int", database=tdb)
    p.start()
    p.wait_streaming(db)
    db.execute("INSERT INTO t VALUES (103, 3, 4)")
    settle_maria(db, mariadb, tdb, ["public.t"])
    assert p.stop() == 0


def test_a_change_in_a_transaction_that_wrote_other_tables_first_is_followed(
        db, mariadb, tdb, make_job):
    """Each writer transaction updates u, then t: the first change of t with
    its new definition comes after a change of u in the same transaction,
    and (penstock catching up on a backlog) in the middle of a batch that
    holds rows of t. The core holds the transaction's first changes back,
    commits the batch before the change, and only then lets the ALTER TABLE
    run (docs/ddl.md)."""
    db.execute("CREATE TABLE u (id int PRIMARY KEY, n int NOT NULL DEFAULT 0);"
               "CREATE TABLE t (id int PRIMARY KEY, n int NOT NULL DEFAULT 0, v int);"
               "INSERT INTO u SELECT g, 0 FROM generate_series(1, 50) g;"
               "INSERT INTO t SELECT g, 0, g FROM generate_series(1, 50) g;")
    p = make_job("multi", target=url_of(mariadb, tdb), tables={"include": ["public.*"]})
    p.start()
    p.wait_streaming(db)
    assert p.stop() == 0
    c = db.cluster.connect(db.name)
    c.autocommit = False
    cur = c.cursor()

    def txns(n, first):
        for i in range(first, first + n):
            cur.execute("UPDATE u SET n = n + 1 WHERE id = %s", (1 + i % 50,))
            cur.execute("UPDATE t SET n = n + 1 WHERE id = %s", (1 + i % 50,))
            c.commit()
    try:
        txns(300, 0)
        db.execute("ALTER TABLE t ADD COLUMN c int DEFAULT 1")
        txns(300, 300)
        db.execute("ALTER TABLE t ALTER COLUMN v TYPE bigint")
        txns(300, 600)
    finally:
        c.close()
    p.start()
    p.wait_streaming(db)
    settle_maria(db, mariadb, tdb, ["public.u", "public.t"], p=p)
    assert p.stop() == 0
    log = p.stderr()
    assert log.count("follows the source") == 2, log
    assert "refused" not in log and "error" not in log.lower(), log
