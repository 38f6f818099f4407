"""PostgreSQL -> MariaDB end to end (issue 17): a real PostgreSQL source and a
real MariaDB 10.11 target, both started by the tests, driven through the
real penstock binary (run, check, compare, server).

- the PostgreSQL type zoo loaded and then changed, compared value by value
  through the canonical forms (mysql_target.maria_rows, written apart from
  penstock) and by `penstock compare`;
- the columns MariaDB has no exact type for, refused by `penstock check`
  with the field and the fix;
- a crash at every fault point and kill -9 at random moments under
  concurrent writes: no loss, no duplicate, the keyless table included;
- a commit still in flight when penstock is killed (held by semi-sync
  replication after it was logged) is not applied twice;
- compare finds and repairs three planted differences in 200,000 rows;
- a migration's cutover sets AUTO_INCREMENT past the source's sequences;
- LOAD DATA LOCAL off on the server: a precheck warning and batched INSERTs.

Nothing sleeps to wait: every wait polls a condition with a deadline.
"""
import json
import os
import random
import re
import signal
import subprocess

import pytest

from conftest import BIN, PGBIN, Writer, wait_for
from mysql_target import maria_rows, new_database, rows_equal, url_of, wait_equal_maria
from test_precheck import failed_ids, items, run_check, spec_for as check_spec
from test_server import server, spec_for, transition_events  # noqa: F401

W_TABLES = ["public.w_items", "public.w_history"]
_n = [0]


@pytest.fixture
def tdb(mariadb):
    _n[0] += 1
    return new_database(mariadb, f"e{_n[0]}_{os.getpid()}")


def compare(db, m, tdb, *extra):
    p = subprocess.run([BIN, "compare", "--source", db.url, "--target", url_of(m, tdb),
                        "--json", *extra], capture_output=True, text=True, timeout=300)
    assert p.returncode in (0, 1), p.stdout + p.stderr
    return p.returncode, json.loads(p.stdout)


# ---- the type zoo ---------------------------------------------------------------

ZOO = """
CREATE TABLE zoo (
  id int PRIMARY KEY, i2 smallint, i8 bigint, f4 real, f8 double precision,
  num numeric(60,10), b boolean, ts timestamp, tstz timestamptz, d date, t time, iv interval,
  by bytea, js json, jb jsonb, arr int[], tarr text[], u uuid, txt text, vc varchar(10),
  ch char(3), inet_ inet, nul text, money_ money, bits bit varying(8), tz timetz,
  ts3 timestamp(3) with time zone
)"""

ZOO_ROW = """
INSERT INTO zoo VALUES (1, -32768, 9223372036854775807, 1.5, -2.5e-05,
  1234567890123456789012345678901234567890.0123456789, true, '2024-02-29 23:59:59.999999',
  '2024-06-01 12:00:00+05:30', '0001-01-01', '24:00:00', '1 year 2 mons 3 days 04:05:06.789',
  '\\x00ff00'::bytea, '{"k": [1, "two", null]}', '{"b": 2, "a": 1}', '{1,NULL,3}',
  '{"a b","c\\"d",NULL}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
  E'quote " backslash \\\\ newline \\n tab \\t emoji \\U0001F600', 'short', 'ab',
  '192.168.0.1/24', NULL, '12.34', B'1010', '10:00:00+02', '2000-01-01 00:00:00.123+00')
"""


def test_postgresql_type_zoo_loads_and_streams_into_mariadb_value_for_value(
        db, mariadb, tdb, make_job):
    db.execute(ZOO)
    db.execute(ZOO_ROW)
    p = make_job("zoo", target=url_of(mariadb, tdb))
    p.start()
    p.wait_streaming(db)
    wait_equal_maria(db, mariadb, tdb, ["public.zoo"])
    # changes: a second row at the edges, an update of most columns, a delete
    db.execute("""INSERT INTO zoo VALUES (2, 0, -1, 3.4028235e+38, 1e-300, -0.0000000001, false,
      '9999-12-31 23:59:59.999999', '1970-01-01 00:00:00+00', '9999-12-31', '00:00:00.000001',
      '-1 days', ''::bytea, '[]', '{}', '{}', '{}', '00000000-0000-0000-0000-000000000000',
      '', '', '', '::1', '', '-0.01', B'', '23:59:59-11', '2038-01-19 03:14:08+00')""")
    db.execute("""UPDATE zoo SET i2 = 7, f4 = 0.1, f8 = 0.1, num = 1.5, b = false,
      tstz = '2024-12-31 23:59:59.5-08', by = '\\xdeadbeef', jb = '{"nested": {"a": [true]}}',
      arr = '{{1,2},{3,4}}', txt = E'tab\\there\\nline', ch = 'x' WHERE id = 1""")
    db.execute("INSERT INTO zoo (id) VALUES (3)")
    db.execute("DELETE FROM zoo WHERE id = 3")
    wait_equal_maria(db, mariadb, tdb, ["public.zoo"])
    assert p.stop() == 0
    # the target's own types
    types = dict(mariadb.execute("SELECT COLUMN_NAME, COLUMN_TYPE FROM information_schema.COLUMNS "
                                 "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = 'zoo'", (tdb,)))
    assert types["num"] == "decimal(60,10)" and types["tstz"] == "datetime(6)"
    assert types["b"] == "tinyint(1)" and types["u"] == "uuid" and types["by"] == "longblob"
    assert types["ts3"] == "datetime(3)" and types["arr"] == "longtext"
    # timestamptz is stored in UTC
    assert mariadb.execute("SELECT CAST(tstz AS CHAR) FROM zoo WHERE id = 1", database=tdb) == \
        (("2025-01-01 07:59:59.500000",),)
    # penstock compare reads MariaDB back through the same canonical forms
    rc, report = compare(db, mariadb, tdb)
    assert rc == 0, report


def test_columns_without_a_mariadb_type_are_refused_at_precheck(tmp_path, db, mariadb, tdb):
    db.execute("CREATE TABLE ledger (id int PRIMARY KEY, amount numeric, fee numeric(80,2), "
               "note text)")
    db.execute("CREATE TABLE fine (id int PRIMARY KEY, tags text[], span interval)")
    spec = check_spec(db, url_of(mariadb, tdb))
    rc, report, p = run_check(tmp_path, spec)
    assert rc == 4, p.stdout + p.stderr
    assert failed_ids(report) == ["target.types"]
    it = items(report)["target.types"]
    assert "public.ledger.amount: numeric has no precision" in it["message"], it
    assert "public.ledger.fee: numeric(80,2) does not fit" in it["message"], it
    assert "fine" not in it["message"]
    assert "numeric(p,s)" in it["fix"] and "create the target table yourself" in it["fix"]
    # a job does not get past its start either: the load refuses the table
    p2 = subprocess.run([BIN, "check", str(tmp_path / "spec.json")], capture_output=True,
                        text=True, timeout=60)
    assert "target.types" in p2.stdout and "fix:" in p2.stdout
    # with the refused columns given exact types in the source, it passes,
    # and says what is kept as text
    db.execute("ALTER TABLE ledger ALTER COLUMN amount TYPE numeric(20,4), "
               "ALTER COLUMN fee TYPE numeric(30,2)")
    rc, report, p = run_check(tmp_path, spec)
    assert rc == 0, p.stdout
    msg = items(report)["target.types"]["message"]
    assert "public.fine.tags (text[] as LONGTEXT)" in msg and "public.fine.span" in msg


def test_precheck_names_triggers_engines_and_clashes(tmp_path, db, mariadb, tdb):
    db.execute("CREATE TABLE a (id int PRIMARY KEY)")
    db.execute("CREATE SCHEMA other")
    db.execute("CREATE TABLE other.a (id int PRIMARY KEY)")
    db.execute("CREATE TABLE b (id int PRIMARY KEY)")
    mariadb.execute("CREATE TABLE b (id int PRIMARY KEY) ENGINE=MyISAM", database=tdb)
    mariadb.execute("CREATE TABLE a (id int PRIMARY KEY, only_here int NOT NULL)", database=tdb)
    mariadb.execute("CREATE TRIGGER a_ins BEFORE INSERT ON a FOR EACH ROW SET NEW.id = NEW.id",
                    database=tdb)
    rc, report, p = run_check(tmp_path, check_spec(db, url_of(mariadb, tdb), type="cdc"))
    assert rc == 4
    tables = items(report)["target.tables"]
    assert "other.a and public.a" in tables["message"], tables
    assert "b (MyISAM)" in tables["message"] and "ENGINE=InnoDB" in tables["fix"], tables
    assert f"{tdb}.a.only_here: only the target has this column" in tables["message"], tables
    assert f"ALTER TABLE `{tdb}`.`a` MODIFY `only_here` int(11) NULL;" in tables["fix"], tables
    trig = items(report)["target.triggers"]
    assert trig["level"] == "warning" and trig["result"] == "failed", trig
    assert f"{tdb}.a (1 trigger)" in trig["message"] and "no session setting" in trig["message"]


def test_missing_privileges_are_named_and_the_fix_is_exact(tmp_path, db, mariadb, tdb):
    """A user with only SELECT: target.writable names what is missing with
    GRANT statements; running them makes the check pass. The password
    travels apart from the URL and is never shown."""
    db.execute("CREATE TABLE orders (id int PRIMARY KEY, note text)")
    user, secret = f"u{tdb}"[:30], "S3cret-for-mariadb"
    mariadb.execute(f"CREATE USER '{user}'@'127.0.0.1' IDENTIFIED BY '{secret}'")
    mariadb.execute(f"GRANT SELECT ON `{tdb}`.* TO '{user}'@'127.0.0.1'")
    spec = check_spec(db, f"mysql://{user}@127.0.0.1:{mariadb.port}/{tdb}")
    spec["target"]["password_env"] = "MARIA_PW"
    try:
        rc, report, p = run_check(tmp_path, spec, env={"MARIA_PW": secret})
        assert rc == 4, p.stdout + p.stderr
        assert secret not in p.stdout + p.stderr
        it = items(report)["target.writable"]
        assert it["result"] == "failed", it
        assert "may not create the checkpoint table" in it["message"], it
        assert f"{tdb}.orders (creating it needs CREATE, ALTER, INDEX)" in it["message"], it
        for stmt in it["fix"].split(";"):
            if stmt.strip():
                mariadb.execute(stmt)
        rc, report, p = run_check(tmp_path, spec, env={"MARIA_PW": secret})
        assert rc == 0, json.dumps(report["items"], indent=1)
    finally:
        mariadb.execute(f"DROP USER '{user}'@'127.0.0.1'")


# ---- crashes and kill -9 ------------------------------------------------------------

def crash_then_resume(db, m, tdb, make_job, fault):
    """The run dies at the fault (SIGKILL for crash, exit 1 for error); a
    second run under continuing writes ends with the target equal to the
    source, the keyless insert-only w_history without a duplicate."""
    Writer.create_tables(db, rows=3000)
    db.execute("ANALYZE")
    writer = Writer(db)
    writer.start()
    try:
        p = make_job("crash", target=url_of(m, tdb), snapshot={"chunk_rows": 1000, "parallel": 2})
        p.start(extra_env={"PENSTOCK_FAULT": fault})
        p.proc.wait(timeout=120)
        expected = -signal.SIGKILL if ":crash" in fault else 1
        assert p.proc.returncode == expected, p.stderr()
        first = p.stderr()
        p.start()
        p.wait_streaming(db)
        done = writer.txns
        wait_for(lambda: writer.txns > done + 50, 60, what="more source transactions")
    finally:
        writer.stop()
    wait_equal_maria(db, m, tdb, W_TABLES)
    assert p.stop() == 0
    return first, p.stderr()


@pytest.mark.parametrize("fault", [
    "snapshot.unit.commit:crash@3",
    "apply.batch.before_commit:crash@4",
    "apply.batch.after_commit:crash@4",
    "source.read:crash@300",
    "source.read:error@301",
    "source.read:error@302",
])
def test_crash_at_each_fault_point_into_mariadb(fault, db, mariadb, tdb, make_job):
    first, second = crash_then_resume(db, mariadb, tdb, make_job, fault)
    if fault.startswith("snapshot"):
        assert "resuming the initial load under a new snapshot" in second
    if ":error" in fault:
        assert "injected fault at source.read" in first
    n = db.value("SELECT count(*) FROM w_history")
    assert mariadb.execute("SELECT COUNT(*) FROM w_history", database=tdb)[0][0] == n


def test_kill_9_at_random_moments_during_pgbench_into_mariadb(db, mariadb, tdb, make_job):
    port = str(db.cluster.port)
    base = [str(PGBIN / "pgbench"), "-h", "127.0.0.1", "-p", port, "-U", "postgres"]
    subprocess.run(base + ["-i", "-s", "1", "-q", db.name], check=True, capture_output=True)
    db.execute("ALTER TABLE pgbench_history REPLICA IDENTITY FULL")
    tables = ["public.pgbench_accounts", "public.pgbench_branches", "public.pgbench_tellers",
              "public.pgbench_history"]
    bench = subprocess.Popen(base + ["-c", "2", "-T", "600", "-n", db.name],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    rand = random.Random(17)

    def count(table):
        have = mariadb.execute("SELECT COUNT(*) FROM information_schema.TABLES WHERE "
                               "TABLE_SCHEMA = %s AND TABLE_NAME = %s", (tdb, table))[0][0]
        return mariadb.execute(f"SELECT COUNT(*) FROM `{table}`", database=tdb)[0][0] \
            if have else None
    try:
        p = make_job("bench", target=url_of(mariadb, tdb),
                     snapshot={"chunk_rows": 20000, "parallel": 2})
        for i in range(4):
            p.start()
            # a random moment: after a random number of rows reached the target
            # (during the load on the first run, while streaming later)
            goal = rand.randrange(1, 40000 if i == 0 else 300)
            table = "pgbench_accounts" if i == 0 else "pgbench_history"
            start = count(table) or 0
            wait_for(lambda: (count(table) or 0) >= start + goal, 90,
                     what=f"{goal} more rows in {table}")
            p.kill()
        assert bench.poll() is None, "pgbench stopped early"
    finally:
        bench.terminate()
        bench.wait(30)
    p.start()
    p.wait_streaming(db)
    wait_equal_maria(db, mariadb, tdb, tables, timeout=120)
    assert p.stop() == 0


def test_a_commit_still_in_flight_when_penstock_is_killed_is_not_applied_twice(
        db, mariadb, tdb, make_job):
    """kill -9 while the target holds penstock's COMMIT: with semi-synchronous
    replication waiting AFTER_SYNC and no replica to acknowledge, the server
    has prepared and logged the batch and its checkpoint, and commits them
    only when the wait ends, after the next run has started (a held commit
    that the server drops when the client goes, as BACKUP STAGE's, is no
    test: it rolls back). The next run must read the checkpoint only once
    that commit is decided, or it applies the batch again and the table
    without a key holds the row twice."""
    db.execute("CREATE TABLE notes (v int)")
    db.execute("ALTER TABLE notes REPLICA IDENTITY FULL")
    db.execute("INSERT INTO notes VALUES (1)")
    p = make_job("inflight", target=url_of(mariadb, tdb))
    p.start()
    p.wait_streaming(db)
    wait_equal_maria(db, mariadb, tdb, ["public.notes"])
    seen = {}

    def commit_held():
        seen["pl"] = mariadb.execute("SELECT ID, STATE, INFO FROM information_schema.PROCESSLIST "
                                     "WHERE DB = %s", (tdb,))
        return any(r[2] == "COMMIT" and "semi-sync" in (r[1] or "") for r in seen["pl"])

    def reader_waits():
        # INNODB_TRX does not list a transaction that has only read (the
        # next run's, waiting for its share lock); the monitor does.
        seen["st"] = mariadb.execute("SHOW ENGINE INNODB STATUS")[0][2]
        return re.search(r"WAITING \d+ us FOR THIS LOCK TO BE GRANTED:\nRECORD LOCKS .* of "
                         "table " + re.escape(f"`{tdb}`.`_penstock_checkpoint`"), seen["st"]) is not None
    mariadb.execute("SET GLOBAL rpl_semi_sync_master_wait_point = 'AFTER_SYNC', "
                    "rpl_semi_sync_master_timeout = 120000, "
                    "rpl_semi_sync_master_wait_no_slave = ON, rpl_semi_sync_master_enabled = ON")
    try:
        db.execute("INSERT INTO notes VALUES (2)")
        try:
            wait_for(commit_held, 30, what="penstock's commit to be held")
        except AssertionError as e:
            raise AssertionError(f"{e}: {seen.get('pl')}") from None
        p.kill()
        assert commit_held()                  # the server still holds it
        p.start()
        try:
            wait_for(reader_waits, 60, what="the next run to wait for the held commit")
        except AssertionError as e:
            raise AssertionError(f"{e}: {seen.get('st')}; {p.stderr()}") from None
    finally:
        mariadb.execute("SET GLOBAL rpl_semi_sync_master_enabled = OFF")   # releases it
    p.wait_streaming(db)
    db.execute("INSERT INTO notes VALUES (3)")
    wait_equal_maria(db, mariadb, tdb, ["public.notes"])
    assert mariadb.execute("SELECT COUNT(*) FROM notes WHERE v = 2", database=tdb)[0][0] == 1
    assert p.stop() == 0


# ---- compare and repair ----------------------------------------------------------------

def test_compare_finds_and_repairs_three_planted_differences_in_200k_rows(
        db, mariadb, tdb, make_job):
    db.execute("CREATE TABLE big (id bigint PRIMARY KEY, name text, amount numeric(12,2), "
               "at timestamptz, ok boolean, raw bytea)")
    db.execute("INSERT INTO big SELECT g, 'name ' || g, g / 100.0, "
               "'2024-01-01'::timestamptz + g * interval '1 second', g % 2 = 0, "
               "decode(lpad(to_hex(g), 8, '0'), 'hex') FROM generate_series(1, 200000) g")
    p = make_job("big", target=url_of(mariadb, tdb), type="snapshot")
    rc, _, err = p.run_to_exit(timeout=300)
    assert rc == 0, err
    rc, report = compare(db, mariadb, tdb)
    assert rc == 0, report
    # three differences: a changed value, a missing row, an extra row
    mariadb.execute("UPDATE big SET amount = amount + 1 WHERE id = 123456", database=tdb)
    mariadb.execute("DELETE FROM big WHERE id = 77", database=tdb)
    mariadb.execute("INSERT INTO big VALUES (300000, 'extra', 1, '2024-01-01', 1, X'00')",
                    database=tdb)
    rc, report = compare(db, mariadb, tdb)
    assert rc == 1
    t = report["tables"][0]
    diffs = {(d["kind"], tuple(d["key"].values())): d for d in t["differences"]}
    assert set(diffs) == {("different", ("123456",)), ("missing_in_target", ("77",)),
                          ("extra_in_target", ("300000",))}, t
    assert diffs[("different", ("123456",))]["columns"] == ["amount"]
    rc, report = compare(db, mariadb, tdb, "--repair")
    assert rc == 0, report
    rc, report = compare(db, mariadb, tdb)
    assert rc == 0, report
    same, _, _ = rows_equal(db, mariadb, tdb, "public.big")
    assert same


# ---- the cutover ---------------------------------------------------------------------

def test_a_migration_into_mariadb_completes_with_auto_increment_past_the_source(
        server, db, mariadb, tdb):
    db.execute("CREATE TABLE orders (id serial PRIMARY KEY, note text)")
    db.execute("CREATE TABLE events (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, kind text)")
    db.execute("INSERT INTO orders (note) SELECT 'o' || g FROM generate_series(1, 50) g")
    db.execute("INSERT INTO events (kind) SELECT 'e' || g FROM generate_series(1, 30) g")
    spec = spec_for(db, url_of(mariadb, tdb), name="move", type="migration",
                    complete={"max_lag_ms": 2000})
    assert server.call("POST", "/v1/jobs", spec)[0] == 201
    server.call("POST", "/v1/jobs/move/start")
    server.wait_state("move", "ready_to_complete")
    db.execute("INSERT INTO orders (note) SELECT 'late' || g FROM generate_series(1, 20) g")
    db.execute("INSERT INTO events (kind) VALUES ('late')")
    db.execute("DELETE FROM orders WHERE id > 65")        # the sequence stays ahead of max(id)
    p = server.cli("complete", "move", "--compare", "--wait", check=0)
    assert "job move is completed" in p.stdout, (p.stdout, p.stderr)
    wait_equal_maria(db, mariadb, tdb, ["public.orders", "public.events"], timeout=10)
    done = transition_events(server, "move")[-1]["reason"]
    assert "sequences: 2 synced" in done and "full compare: equal" in done, done
    assert mariadb.execute("SELECT COUNT(*) FROM _penstock_checkpoint", database=tdb)[0][0] == 0
    for table, insert in [("orders", "INSERT INTO orders (note) VALUES ('after')"),
                          ("events", "INSERT INTO events (kind) VALUES ('after')")]:
        seq = db.value("SELECT pg_get_serial_sequence(%s, 'id')", (table,))
        last = db.value(f"SELECT last_value FROM {seq}")
        c = mariadb.connect(tdb)
        try:
            with c.cursor() as cur:
                cur.execute(insert)
                assert cur.lastrowid == last + 1, (table, cur.lastrowid, last)
        finally:
            c.close()


# ---- LOAD DATA LOCAL off ------------------------------------------------------------------

def test_local_infile_off_warns_and_loads_with_batched_inserts(
        tmp_path, db, mariadb_factory, make_job):
    m = mariadb_factory(extra=["--local-infile=0"])
    t = new_database(m, "noinfile")
    Writer.create_tables(db, rows=5000)
    (tmp_path / "check").mkdir()
    rc, report, p = run_check(tmp_path / "check", check_spec(db, url_of(m, t)))
    it = items(report)["target.local_infile"]
    assert it["level"] == "warning" and it["result"] == "failed", it
    assert "SET GLOBAL local_infile = ON" in it["fix"]
    job = make_job("noinfile", target=url_of(m, t), type="snapshot")
    rc, _, err = job.run_to_exit(timeout=180)
    assert rc == 0, err
    assert "local_infile is OFF" in err and "batched INSERTs" in err
    for table in W_TABLES:
        assert rows_equal(db, m, t, table)[0], table
    assert maria_rows(m, t, "w_items", ["integer", "integer", "text"])
