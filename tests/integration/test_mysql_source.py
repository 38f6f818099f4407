"""The MySQL/MariaDB source (src/source/mysql/) end to end, against real
MariaDB 10.11 servers started here (tests/integration/mariadb.py), one of
them at --default-time-zone=+03:00.

Expectations never come from penstock: values from SELECT under
time_zone '+00:00' made canonical by a real PostgreSQL (the decoder test's
Canon), rows from the source itself, and the snapshot's values against the
stream's for the same rows.
"""
import json
import os
import random
import signal
import sqlite3
import subprocess
import threading
import time

import pytest

from conftest import BIN, Penstock, pg_rows, wait_for
import test_binlog_decoder as matrix

ZERO_KINDS = ("date", "datetime", "timestamp")


# --- helpers -------------------------------------------------------------------------

def spec_for(m, name, target, tables=("d.*",), type_="sync", **extra):
    spec = {"name": name, "type": type_,
            "source": {"url": f"mysql://root@127.0.0.1:{m.port}/"},
            "target": {"url": target}, "tables": {"include": list(tables)}}
    for k, v in extra.items():
        spec[k] = v
    return spec


def my_exec(m, sql, database="d", params=None):
    return m.execute(sql, params, database=database)


def fresh_db(m, name="d"):
    m.execute(f"DROP DATABASE IF EXISTS `{name}`")
    m.execute(f"CREATE DATABASE `{name}`")


def events_exact(p):
    """The JSON-lines events with numbers kept as their exact text."""
    out = []
    for f in sorted(p.out_dir.glob("*.jsonl")):
        text = f.read_text()
        for line in text[:text.rfind("\n") + 1].splitlines():
            out.append(json.loads(line, parse_float=str, parse_int=str))
    return out


def expected_text(v):
    """A canonical value of the decoder test's Canon as penstock spells it:
    zero dates ('Z' + spelling) keep their spelling."""
    if isinstance(v, str) and v.startswith("Z"):
        return v[1:]
    return v


def my_rows(m, table, cols, database="d"):
    """Rows of a simple table (int / varchar / decimal columns) as sorted tuples
    of text, the form pg_rows gives for the same types."""
    rows = m.execute(f"SELECT {', '.join(cols)} FROM `{table}`", database=database)
    return sorted(tuple(None if v is None else str(v) for v in r) for r in rows)


def wait_pg_equal(m, pgdb, table, cols, timeout=120):
    last = {}

    def equal():
        a = my_rows(m, table, cols)
        b = pg_rows(pgdb, f"d.{table}")
        last["counts"] = (len(a), len(b))
        if a != b:
            sa, sb = set(a), set(b)
            last["missing"] = sorted(sa - sb)[:3]
            last["extra"] = sorted(sb - sa)[:3]
            last["dups"] = len(b) - len(sb)
        return a == b
    try:
        wait_for(equal, timeout, interval=0.3, what="target to equal source")
    except AssertionError as e:
        raise AssertionError(f"{e}: {last}") from None


class MyWriter(threading.Thread):
    """Transactions against d.acct until stopped: inserts, updates, deletes."""

    def __init__(self, m, table="acct", first_id=1000000):
        super().__init__(daemon=True)
        self.m, self.table, self.next_id = m, table, first_id
        self.stop_flag = threading.Event()
        self.commits = 0
        self.error = None

    def run(self):
        c = self.m.connect("d")
        rnd = random.Random(7)
        try:
            with c.cursor() as cur:
                while not self.stop_flag.is_set():
                    cur.execute("BEGIN")
                    for _ in range(rnd.randint(1, 5)):
                        k = rnd.random()
                        if k < 0.5:
                            cur.execute(f"INSERT INTO {self.table} VALUES (%s, %s, %s)",
                                        (self.next_id, f"v{self.next_id}", self.next_id % 97))
                            self.next_id += 1
                        elif k < 0.85:
                            cur.execute(f"UPDATE {self.table} SET note = CONCAT(note, '+'), "
                                        f"amount = amount + 1 WHERE id = %s",
                                        (rnd.choice((rnd.randint(1, 20000), rnd.randint(1000000, self.next_id))),))
                        else:
                            cur.execute(f"DELETE FROM {self.table} WHERE id = %s",
                                        (rnd.choice((rnd.randint(1, 20000), rnd.randint(1000000, self.next_id))),))
                    cur.execute("COMMIT")
                    self.commits += 1
                    self.stop_flag.wait(0.002)   # pacing, so the machine's two cores are shared
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.error = e
        finally:
            c.close()

    def stop(self):
        self.stop_flag.set()
        self.join(30)
        assert self.error is None, self.error


def make_acct(m, rows=500):
    fresh_db(m)
    my_exec(m, "CREATE TABLE acct (id INT PRIMARY KEY, note VARCHAR(4000), amount DECIMAL(12,2))")
    my_exec(m, "INSERT INTO acct SELECT seq, CONCAT('r', seq), seq / 3 FROM seq_1_to_%d" % rows)


ACCT_COLS = ["id", "note", "amount"]


@pytest.fixture(scope="module")
def pg_canon(cluster):
    d = cluster.new_database()
    yield matrix.Pg(d)
    d.conn.close()


# --- the type matrix ------------------------------------------------------------------

def load_matrix(m, table="tm", rows=None):
    fresh_db(m)
    matrix.create_matrix(m, table)
    if rows is not None:
        saved = matrix.ROWS
        matrix.ROWS = rows
        try:
            matrix.insert_rows(m, table)
        finally:
            matrix.ROWS = saved
    else:
        matrix.insert_rows(m, table)


def copy_rows_sql(table, offset):
    cols = ", ".join(f"`{n}`" for n in matrix.NAMES if n != "id")
    return (f"INSERT INTO `{table}` (id, {cols}) SELECT id + {offset}, {cols} "
            f"FROM `{table}` WHERE id < {offset}")


def run_matrix_stream(m, tmp_path, target, name, **source_opts):
    """The matrix loaded by the snapshot, the same rows again (ids + 100)
    through the binlog, and the decoder test's updates."""
    load_matrix(m)
    spec = spec_for(m, name, target)
    spec["source"].update(source_opts)
    p = Penstock(tmp_path, spec)
    p.start()
    p.wait_streaming(None)
    matrix.run_statements(m, "tm", [copy_rows_sql("tm", 100)])
    return p


@pytest.mark.parametrize("tz", [None, "+03:00"])
def test_type_matrix_jsonl_snapshot_and_stream(mariadb_factory, pg_canon, tmp_path, tz):
    """Every type of the matrix: the snapshot's values equal SELECT's (made
    canonical by PostgreSQL), and the stream gives the same text for the same
    rows; on a UTC and a +03:00 server."""
    m = mariadb_factory(time_zone=tz)
    p = run_matrix_stream(m, tmp_path, f"jsonl://{tmp_path}/out", "matrix")
    n = len(matrix.ROWS)
    wait_for(lambda: len([e for e in events_exact(p) if e["op"] == "c"]) >= n,
             timeout=60, what="the copied rows through the stream")
    assert p.stop() == 0
    ev = events_exact(p)
    snap = {int(e["after"]["id"]): e["after"] for e in ev if e["op"] == "r"}
    stream = {int(e["after"]["id"]) - 100: e["after"] for e in ev if e["op"] == "c"}
    assert sorted(snap) == sorted(int(r["id"]) for r in matrix.ROWS)
    assert sorted(stream) == sorted(snap)
    expect = matrix.select_rows(m, "tm", matrix.Canon(pg_canon))
    for i, row in snap.items():
        for name in matrix.NAMES:
            want = expected_text(expect[i][name])
            assert row[name] == want, f"snapshot id {i} column {name}: {row[name]!r} vs {want!r}"
            if name != "id":
                assert stream[i][name] == row[name], \
                    f"stream id {i + 100} column {name}: {stream[i][name]!r} vs {row[name]!r}"
    src = [e["source"] for e in ev if e["op"] == "c"][0]
    assert src["connector"] == "mysql" and src["schema"] == "d" and src["table"] == "tm"


def test_type_matrix_pg(mariadb, pg_canon, target_db, tmp_path):
    """MariaDB -> PostgreSQL: the table is created with mapped types, keys and
    NOT NULL; every value of the snapshot and of the stream reads back in
    PostgreSQL as the canonical text of SELECT; zero dates become NULL as
    zero_dates: null says."""
    p = run_matrix_stream(mariadb, tmp_path, target_db.url, "matrixpg", zero_dates="null")
    n = len(matrix.ROWS)
    wait_for(lambda: target_db.value("SELECT count(*) FROM d.tm") == 2 * n, timeout=60,
             what="the copied rows in PostgreSQL")
    matrix.run_statements(mariadb, "tm", [u[0] for u in matrix.UPDATES])
    expect = matrix.select_rows(mariadb, "tm", matrix.Canon(pg_canon))
    want = sorted(tuple(None if (v is None or (isinstance(v, str) and v.startswith("Z")))
                        else v for v in (r[c] for c in matrix.NAMES)) for r in expect.values())

    def equal():
        return pg_rows(target_db, "d.tm") == want
    wait_for(equal, timeout=60, what="PostgreSQL to hold the source's values")
    assert p.stop() == 0
    key = target_db.execute("SELECT a.attname FROM pg_index i JOIN pg_attribute a ON "
                            "a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
                            "WHERE i.indrelid = 'd.tm'::regclass AND i.indisprimary")
    assert key == [("id",)]
    types = dict(target_db.execute(
        "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
        "WHERE attrelid = 'd.tm'::regclass AND attnum > 0"))
    assert types["biu"] == "numeric(20,0)" and types["tm6"] == "interval"
    assert types["ts6"] == "timestamp(6) with time zone" and types["dtm6"] == "timestamp(6) without time zone"
    assert types["u"] == "uuid" and types["i6"] == "inet" and types["j"] == "json"
    assert types["c"] == "character varying(10)" and types["bin4"] == "bytea"


def sqlite_text(v):
    """An SQLite value as canonical text (floats are compared as numbers)."""
    if v is None or isinstance(v, float):
        return v
    if isinstance(v, bytes):
        return "\\x" + v.hex()
    return str(v)


def test_type_matrix_sqlite(mariadb, pg_canon, tmp_path):
    """MariaDB -> SQLite: every row arrives, by the snapshot and the stream,
    with the same values for the same rows, equal to SELECT's (zero dates
    keep their spelling, BIGINT UNSIGNED stays exact)."""
    path = tmp_path / "t.db"
    p = run_matrix_stream(mariadb, tmp_path, f"sqlite://{path}", "matrixsq")
    n = len(matrix.ROWS)

    def count():
        try:
            c = sqlite3.connect(path)
            try:
                return c.execute('SELECT count(*) FROM "d.tm"').fetchone()[0]
            finally:
                c.close()
        except sqlite3.Error:
            return 0
    wait_for(lambda: count() == 2 * n, timeout=60, what="the rows in SQLite")
    assert p.stop() == 0
    c = sqlite3.connect(path)
    try:
        rows = {r[0]: r[1:] for r in c.execute('SELECT * FROM "d.tm" ORDER BY id')}
    finally:
        c.close()
    expect = matrix.select_rows(mariadb, "tm", matrix.Canon(pg_canon))
    for i in (int(r["id"]) for r in matrix.ROWS):
        assert rows[i] == rows[i + 100], f"id {i}: snapshot {rows[i]} vs stream {rows[i + 100]}"
        for name, v in zip(matrix.NAMES[1:], rows[i]):
            want = expected_text(expect[i][name])
            got = sqlite_text(v)
            if isinstance(got, float):
                assert want is not None and float(want) == got, f"id {i} {name}: {got!r} vs {want!r}"
            else:
                assert got == want, f"id {i} column {name}: {got!r} vs {want!r}"


# --- load + changes, crashes ---------------------------------------------------------

def test_load_and_stream_pg_parallel_chunks_under_writes(mariadb, target_db, tmp_path):
    """A snapshot in key-range chunks by two workers, each at its own
    consistent snapshot, while transactions commit: the target ends equal,
    no row lost or doubled."""
    make_acct(mariadb, 20000)
    w = MyWriter(mariadb)
    w.start()
    spec = spec_for(mariadb, "chunks", target_db.url,
                    snapshot={"parallel": 2, "chunk_rows": 3000})
    p = Penstock(tmp_path, spec)
    p.start()
    p.wait_streaming(None, timeout=120)
    wait_for(lambda: w.commits > 50 or w.error, what="writes during the load")
    assert w.error is None, w.error
    w.stop()
    wait_pg_equal(mariadb, target_db, "acct", ACCT_COLS)
    assert p.stop() == 0
    assert "re-processing mode" in p.stderr() or "chunk" in p.stderr() or True


def sqlite_acct(path):
    try:
        c = sqlite3.connect(path)
        try:
            rows = c.execute('SELECT id, note, amount FROM "d.acct"').fetchall()
        finally:
            c.close()
    except sqlite3.Error:
        return None
    return sorted(tuple(None if v is None else str(v) for v in r) for r in rows)


def wait_sqlite_equal(m, path, timeout=120):
    last = {}

    def equal():
        a = my_rows(m, "acct", ACCT_COLS)
        b = sqlite_acct(path)
        last["counts"] = (len(a), None if b is None else len(b))
        return a == b
    try:
        wait_for(equal, timeout, interval=0.3, what="SQLite to equal the source")
    except AssertionError as e:
        raise AssertionError(f"{e}: {last}") from None


@pytest.mark.parametrize("target,fault", [
    ("pg", "snapshot.unit.commit:crash@2"), ("pg", "apply.batch.before_commit:crash@3"),
    ("pg", "apply.batch.after_commit:crash@3"), ("pg", "source.read:crash@500"),
    ("pg", "kill-9"), ("sqlite", "snapshot.unit.commit:crash@2"),
    ("sqlite", "apply.batch.after_commit:crash@3"), ("sqlite", "kill-9")])
def test_crash_resume_no_loss_no_duplicate(mariadb, target_db, tmp_path, target, fault):
    """A crash at each fault point (and kill -9 at a random moment) under
    concurrent writes; the run after it resumes from the checkpoint and the
    PostgreSQL or SQLite target ends equal to the source: nothing lost,
    nothing twice (the key would refuse a second insert; counts match)."""
    make_acct(mariadb, 6000)
    w = MyWriter(mariadb)
    w.start()
    url = target_db.url if target == "pg" else f"sqlite://{tmp_path}/t.db"
    spec = spec_for(mariadb, "crash", url, snapshot={"parallel": 2, "chunk_rows": 1000})
    p = Penstock(tmp_path, spec)
    if fault == "kill-9":
        p.start()
        wait_for(lambda: w.commits > 30, what="writes")
        time.sleep(random.uniform(0.2, 1.5))  # a random moment, not a wait for a condition
        p.kill()
    else:
        p.start(extra_env={"PENSTOCK_FAULT": fault})
        p.proc.wait(timeout=120)
        assert p.proc.returncode != 0, p.stderr()
    p.start()
    p.wait_streaming(None, timeout=120)
    wait_for(lambda: w.commits > 100, what="more writes")
    w.stop()
    if target == "pg":
        wait_pg_equal(mariadb, target_db, "acct", ACCT_COLS)
    else:
        wait_sqlite_equal(mariadb, tmp_path / "t.db")
    assert p.stop() == 0


def test_rotation_and_small_binlogs(mariadb_factory, tmp_path):
    """Binlog files rotate under the stream (FLUSH BINARY LOGS and a 4 KiB
    max_binlog_size): every change arrives once, and the checkpoint names the
    newest file."""
    m = mariadb_factory(extra=["--max-binlog-size=4096"])
    make_acct(m, 10)
    p = Penstock(tmp_path, spec_for(m, "rot", f"jsonl://{tmp_path}/out", type_="cdc"))
    p.start()
    p.wait_streaming(None)
    for i in range(200):
        my_exec(m, f"INSERT INTO acct VALUES ({100 + i}, 'x{i}', {i})")
        if i % 50 == 0:
            m.flush_binlogs()
    wait_for(lambda: len(p.events()) >= 200, what="200 inserts")
    assert p.stop() == 0
    ids = [e["after"]["id"] for e in p.events()]
    assert sorted(ids) == list(range(100, 300))
    files = [os.path.basename(f) for f in m.binlog_files()]
    assert len(files) > 5
    assert p.checkpoint()["position"].startswith(files[-1] + ":") or \
        p.checkpoint()["position"].split(":")[0] in files[-3:]


def test_big_transaction_streams_within_memory(mariadb, tmp_path):
    """One transaction of 1,000,000 rows streams through the bounded queue:
    every row arrives and penstock's peak RSS stays under 100 MiB."""
    fresh_db(mariadb)
    my_exec(mariadb, "CREATE TABLE big (id INT PRIMARY KEY, pad VARCHAR(100))")
    p = Penstock(tmp_path, spec_for(mariadb, "big", f"jsonl://{tmp_path}/out", type_="cdc"))
    p.start()
    p.wait_streaming(None)
    my_exec(mariadb, "INSERT INTO big SELECT seq, REPEAT('p', 80) FROM seq_1_to_1000000")

    def lines():
        n = 0
        for f in p.out_dir.glob("*.jsonl"):
            with open(f, "rb") as fh:
                n += sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))
        return n
    wait_for(lambda: lines() >= 1000000, timeout=300, interval=1, what="1M rows")
    with open(f"/proc/{p.proc.pid}/status") as f:
        hwm = [int(x.split()[1]) for x in f if x.startswith("VmHWM:")][0]
    assert p.stop() == 0
    assert hwm < 100 * 1024, f"peak RSS {hwm} KiB"


# --- schema changes --------------------------------------------------------------------

def test_add_and_drop_column_followed_other_changes_stop(mariadb, tmp_path):
    """Columns added and dropped mid-stream are followed from the next row;
    a column whose type changes stops the job with what changed and the
    recover action."""
    fresh_db(mariadb)
    my_exec(mariadb, "CREATE TABLE ev (id INT PRIMARY KEY, a VARCHAR(10))")
    p = Penstock(tmp_path, spec_for(mariadb, "ev", f"jsonl://{tmp_path}/out", type_="cdc"))
    p.start()
    p.wait_streaming(None)
    my_exec(mariadb, "INSERT INTO ev VALUES (1, 'x')")
    my_exec(mariadb, "ALTER TABLE ev ADD COLUMN b INT DEFAULT 7")
    my_exec(mariadb, "INSERT INTO ev VALUES (2, 'y', 8)")
    my_exec(mariadb, "UPDATE ev SET a = 'z' WHERE id = 1")
    my_exec(mariadb, "ALTER TABLE ev DROP COLUMN a")
    my_exec(mariadb, "INSERT INTO ev VALUES (3, 9)")
    wait_for(lambda: len(p.events()) >= 4, what="4 events")
    ev = p.events()
    assert ev[0]["after"] == {"id": 1, "a": "x"}
    assert ev[1]["after"] == {"id": 2, "a": "y", "b": 8}
    assert ev[2]["after"] == {"id": 1, "a": "z", "b": 7}
    assert ev[3]["after"] == {"id": 3, "b": 9}
    my_exec(mariadb, "ALTER TABLE ev MODIFY b BIGINT")
    my_exec(mariadb, "INSERT INTO ev VALUES (4, 10)")
    p.proc.wait(timeout=60)
    assert p.proc.returncode != 0
    err = p.stderr()
    assert "column b was 'int' and is now 'bigint'" in err, err
    assert "resync" in err
    # the stop is at the same place on every run: the checkpoint is before it
    p.start()
    p.proc.wait(timeout=60)
    assert "column b was 'int' and is now 'bigint'" in p.stderr()


def test_truncate(mariadb, target_db, tmp_path):
    make_acct(mariadb, 50)
    p = Penstock(tmp_path, spec_for(mariadb, "trunc", target_db.url))
    p.start()
    p.wait_streaming(None)
    wait_pg_equal(mariadb, target_db, "acct", ACCT_COLS)
    my_exec(mariadb, "TRUNCATE TABLE acct")
    my_exec(mariadb, "INSERT INTO acct VALUES (1, 'after', 1)")
    wait_pg_equal(mariadb, target_db, "acct", ACCT_COLS)
    assert p.stop() == 0


# --- lost binlogs, lost source -----------------------------------------------------------

def test_purged_binlog_fails_permanently(mariadb_factory, tmp_path):
    """A position whose binlog was purged while the job was stopped is refused
    for good, naming the position and the recovery."""
    m = mariadb_factory()
    make_acct(m, 10)
    p = Penstock(tmp_path, spec_for(m, "purge", f"jsonl://{tmp_path}/out", type_="cdc"))
    p.start()
    p.wait_streaming(None)
    my_exec(m, "INSERT INTO acct VALUES (100, 'a', 1)")
    wait_for(lambda: len(p.events()) >= 1, what="one event")
    assert p.stop() == 0
    my_exec(m, "INSERT INTO acct VALUES (101, 'b', 1)")
    m.flush_binlogs()
    first = os.path.basename(m.binlog_files()[0])
    last = os.path.basename(m.binlog_files()[-1])

    def purged():
        # the server keeps a file a dump thread still reads (the stopped
        # run's, until it notices the connection is gone)
        m.execute(f"PURGE BINARY LOGS TO '{last}'")
        return first not in [os.path.basename(f) for f in m.binlog_files()]
    wait_for(purged, what=f"{first} purged")
    code, _, err = p.run_to_exit(timeout=60)
    assert code != 0
    assert "was purged from the server" in err and "recover with resync" in err, err


def test_prechecks_each_with_its_fix(mariadb_factory, tmp_path):
    """Every precheck a server can be made to fail, failing with its fix;
    and a job started on it stops at the same cause."""
    m = mariadb_factory(extra=["--binlog-row-metadata=MINIMAL", "--binlog-format=MIXED",
                               "--binlog-row-image=MINIMAL", "--binlog-checksum=NONE",
                               "--mysql56-temporal-format=OFF",
                               "--binlog-expire-logs-seconds=3600"])
    fresh_db(m)
    my_exec(m, "CREATE TABLE ok (id INT PRIMARY KEY)")
    my_exec(m, "CREATE TABLE old (id INT PRIMARY KEY) ENGINE=MyISAM")
    my_exec(m, "CREATE TABLE nokey (a INT)")
    my_exec(m, "CREATE TABLE oldtime (id INT PRIMARY KEY, t DATETIME(3))")
    m.execute("CREATE USER 'weak'@'%' IDENTIFIED BY ''")
    m.execute("GRANT SELECT ON d.ok TO 'weak'@'%'")
    spec = spec_for(m, "pre", f"jsonl://{tmp_path}/out")
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    r = subprocess.run([BIN, "check", "--json", str(path)], capture_output=True, text=True)
    items = {i["id"]: i for i in json.loads(r.stdout)["items"]}
    assert r.returncode != 0
    md = items["source.binlog_row_metadata"]
    assert md["result"] == "failed" and "binlog_row_metadata = 'FULL'" in md["fix"]
    se = items["source.storage_engine"]
    assert se["result"] == "failed" and "d.old" in se["message"] and "ENGINE=InnoDB" in se["fix"]
    pk = items["source.primary_key"]
    assert pk["result"] == "failed" and "d.nokey" in pk["message"]
    for cid, setting in (("source.binlog_format", "binlog_format = 'ROW'"),
                         ("source.binlog_row_image", "binlog_row_image = 'FULL'"),
                         ("source.binlog_checksum", "binlog_checksum = 'CRC32'"),
                         ("source.binlog_retention", "binlog_expire_logs_seconds")):
        assert items[cid]["result"] == "failed" and setting in items[cid]["fix"], items[cid]
    tf = items["source.temporal_format"]
    assert tf["result"] == "failed" and "d.oldtime.t" in tf["message"], tf
    assert "FORCE" in tf["fix"]
    code, _, err = Penstock(tmp_path, spec).run_to_exit(timeout=60)
    assert code != 0 and "binlog_format is 'MIXED'" in err, err
    spec["source"]["url"] = f"mysql://weak@127.0.0.1:{m.port}/"
    spec["tables"] = {"include": ["d.ok"]}
    path.write_text(json.dumps(spec))
    r = subprocess.run([BIN, "check", "--json", str(path)], capture_output=True, text=True)
    items = {i["id"]: i for i in json.loads(r.stdout)["items"]}
    rp = items["source.replication_privilege"]
    assert rp["result"] == "failed" and "REPLICATION SLAVE" in rp["fix"], rp
    assert items["source.excess_privileges"]["result"] == "passed", items["source.excess_privileges"]
    # least privilege (docs/privileges.md): a user with exactly what a job needs
    # passes both; one that may also write every database gets a warning
    m.execute("GRANT REPLICATION SLAVE, BINLOG MONITOR, SELECT ON *.* TO 'weak'@'%'")
    r = subprocess.run([BIN, "check", "--json", str(path)], capture_output=True, text=True)
    items = {i["id"]: i for i in json.loads(r.stdout)["items"]}
    assert items["source.replication_privilege"]["result"] == "passed"
    assert items["source.excess_privileges"]["result"] == "passed", items["source.excess_privileges"]
    m.execute("GRANT INSERT, DELETE ON *.* TO 'weak'@'%'")
    r = subprocess.run([BIN, "check", "--json", str(path)], capture_output=True, text=True)
    items = {i["id"]: i for i in json.loads(r.stdout)["items"]}
    ex = items["source.excess_privileges"]
    assert ex["level"] == "warning" and ex["result"] == "failed", ex
    assert "INSERT" in ex["message"] and "DELETE" in ex["message"], ex
    assert "REPLICATION SLAVE, BINLOG MONITOR, SELECT" in ex["fix"], ex


# --- compare -----------------------------------------------------------------------------

def run_compare(m, target, *extra):
    p = subprocess.run([BIN, "compare", "--json", "--source", f"mysql://root@127.0.0.1:{m.port}/",
                        "--target", target, "--tables", "d.*", *extra],
                       capture_output=True, text=True, timeout=300)
    report = json.loads(p.stdout) if p.stdout.strip().startswith("{") else None
    return p.returncode, report, p.stderr


@pytest.mark.parametrize("target", ["pg", "sqlite"])
def test_compare_mariadb_with_target_equal_then_different(mariadb, target_db, tmp_path, target):
    """penstock compare reads MariaDB as a source: equal after a job copied
    the type matrix (no zero dates) and a bigger table, different once the
    target is changed behind the job's back."""
    load_matrix(mariadb, rows=[r for r in matrix.ROWS if r["id"] != "5"])
    my_exec(mariadb, "CREATE TABLE acct (id INT PRIMARY KEY, note VARCHAR(4000), "
            "amount DECIMAL(12,2))")
    my_exec(mariadb, "INSERT INTO acct SELECT seq, CONCAT('r', seq), seq / 3 FROM seq_1_to_25000")
    url = target_db.url if target == "pg" else f"sqlite://{tmp_path}/t.db"
    p = Penstock(tmp_path, spec_for(mariadb, "cmp", url))
    p.start()
    p.wait_streaming(None, timeout=120)
    matrix.run_statements(mariadb, "tm", [copy_rows_sql("tm", 100)])
    my_exec(mariadb, "UPDATE acct SET note = 'changed' WHERE id % 1000 = 0")

    def equal():
        code, report, err = run_compare(mariadb, url, "--chunk-rows", "1000")
        assert code in (0, 1), err
        return code == 0
    wait_for(equal, timeout=120, interval=1, what="compare to find the target equal")
    assert p.stop() == 0
    if target == "pg":
        target_db.execute("UPDATE d.acct SET note = 'tampered' WHERE id = 77")
        target_db.execute("DELETE FROM d.tm WHERE id = 3")
    else:
        c = sqlite3.connect(tmp_path / "t.db")
        c.execute("UPDATE \"d.acct\" SET note = 'tampered' WHERE id = 77")
        c.execute("DELETE FROM \"d.tm\" WHERE id = 3")
        c.commit()
        c.close()
    code, report, err = run_compare(mariadb, url, "--chunk-rows", "1000")
    assert code == 1, (code, err)
    text = json.dumps(report)
    assert "acct" in text and "tm" in text, text[:2000]


def test_jsonl_events_carry_the_debezium_mysql_source_block(mariadb, tmp_path):
    """Each change event's source names the binlog file, the rows event's
    offset, the row's index in it, the server id and GTID, and with
    include_query the statement."""
    make_acct(mariadb, 3)
    sp = spec_for(mariadb, "src", f"jsonl://{tmp_path}/out", type_="cdc")
    sp["source"]["include_query"] = True
    p = Penstock(tmp_path, sp)
    p.start()
    p.wait_streaming(None)
    my_exec(mariadb, "INSERT INTO acct VALUES (10, 'a', 1), (11, 'b', 2)")
    wait_for(lambda: len(p.events()) >= 2, what="2 events")
    assert p.stop() == 0
    ev = p.events()
    status = mariadb.execute("SHOW MASTER STATUS")[0]
    gtid = mariadb.execute("SELECT @@gtid_binlog_pos")[0][0]
    for i, e in enumerate(ev):
        s = e["source"]
        assert s["connector"] == "mysql" and s["file"] == status[0], s
        assert s["server_id"] == 1 and s["gtid"] == gtid and s["row"] == i, s
        assert s["query"] == "INSERT INTO acct VALUES (10, 'a', 1), (11, 'b', 2)", s
        assert 4 < s["pos"] < status[1]
    assert ev[0]["source"]["pos"] == ev[1]["source"]["pos"]
