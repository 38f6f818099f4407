"""Integration test harness: a real PostgreSQL 15 cluster per test session
(started by scripts/pgtmp.sh in a temporary directory on a free loopback
port), a fresh database per test, and a driver for the real penstock binary.

Nothing here sleeps to wait: every wait polls a condition with a deadline.
"""
import collections
import json
import math
import os
import pathlib
import random
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import threading
import time

import psycopg2
import psycopg2.errors
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
PGTMP = ROOT / "scripts" / "pgtmp.sh"
BIN = os.environ.get("PENSTOCK_BIN", str(ROOT / "build" / "penstock"))
PGBIN = pathlib.Path("/usr/lib/postgresql/15/bin")
# The settings penstock uses for the text form of values (util/pgconn.h).
CANONICAL = ("SET DateStyle=ISO; SET TimeZone=UTC; SET IntervalStyle=postgres; "
             "SET extra_float_digits=3; SET bytea_output=hex")


def lsn_int(text):
    """A WAL position's text ('16/B374D848') as the integer it stands for,
    so positions compare and subtract as numbers."""
    hi, lo = text.split("/")
    return (int(hi, 16) << 32) | int(lo, 16)


def wait_for(predicate, timeout=30.0, interval=0.05, what="condition"):
    """Polls predicate until it returns a truthy value; fails after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


class Cluster:
    """A throwaway PostgreSQL 15 (scripts/pgtmp.sh) in base. durable: with
    PostgreSQL's default durability (fsync, synchronous_commit and
    full_page_writes on) instead of the tests' fast settings; settings: more
    `name=value` server settings."""

    def __init__(self, base, durable=False, settings=()):
        self.base = base
        self.durable = durable
        self.port = int(subprocess.check_output([str(PGTMP), "freeport"]).decode())
        self.dir = os.path.join(base, "pg")
        subprocess.run([str(PGTMP), "start", *(["--durable"] if durable else []), self.dir,
                        str(self.port), *settings], check=True)
        self._n = 0

    def connect(self, dbname="postgres", user="postgres", password=None):
        c = psycopg2.connect(host="127.0.0.1", port=self.port, dbname=dbname, user=user,
                             password=password)
        c.autocommit = True
        return c

    def new_database(self):
        self._n += 1
        name = f"t{self._n}_{os.getpid()}"
        c = self.connect()
        try:
            with c.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{name}"')
        finally:
            c.close()
        return Database(self, name)

    def stop(self):
        subprocess.run([str(PGTMP), "stop", self.dir], check=False)

    def crash(self, wait=True):
        """An immediate shutdown, as `pg_ctl -m immediate` makes it: SIGQUIT
        to the postmaster, sent from here (pg_ctl would first take a shell
        and tens of milliseconds to start), then waits until the server is
        gone. Every process quits at once, as in a crash: what the WAL
        buffers held and nobody had written is lost. wait=False: returns at
        once (the server quits as soon as its processes can).
        """
        pidfile = os.path.join(self.dir, "data", "postmaster.pid")
        with open(pidfile) as f:
            pid = int(f.readline())
        os.kill(pid, signal.SIGQUIT)
        if wait:
            wait_for(lambda: not os.path.exists(f"/proc/{pid}"), 60, 0.01,
                     what="the server to quit")

    def restart(self):
        """Starts a stopped (or crashed) cluster again with its settings;
        after a crash it recovers from its WAL first."""
        subprocess.run([str(PGTMP), "restart", self.dir], check=True)


class Database:
    def __init__(self, cluster, name):
        self.cluster = cluster
        self.name = name
        self.conn = cluster.connect(name)

    @property
    def url(self):
        return f"postgresql://postgres@127.0.0.1:{self.cluster.port}/{self.name}"

    def execute(self, sql, params=None):
        with self.conn.cursor() as cur:
            cur.execute(sql, params)
            if cur.description is not None:
                return cur.fetchall()
        return None

    def value(self, sql, params=None):
        rows = self.execute(sql, params)
        return rows[0][0] if rows else None



class Penstock:
    """Runs `penstock run` on a spec, with its own state and output directories."""

    def __init__(self, workdir, spec, env=None):
        self.workdir = pathlib.Path(workdir)
        self.state_dir = self.workdir / "state"
        self.out_dir = self.workdir / "out"
        self.spec = spec
        self.env = dict(os.environ, **(env or {}))
        self.proc = None
        self.runs = 0

    @property
    def spec_path(self):
        return self.workdir / "spec.json"

    def write_spec(self):
        self.spec_path.write_text(json.dumps(self.spec))

    def start(self, extra_env=None, args=()):
        self.write_spec()
        self.runs += 1
        self.stderr_path = self.workdir / f"stderr.{self.runs}.log"
        env = dict(self.env, **(extra_env or {}))
        self.proc = subprocess.Popen(
            [BIN, "run", "--state-dir", str(self.state_dir), *args, str(self.spec_path)],
            stdout=subprocess.PIPE if self.spec["target"]["url"] == "jsonl:-" else subprocess.DEVNULL,
            stderr=open(self.stderr_path, "w"), env=env)
        return self.proc

    def run_to_exit(self, timeout=60, extra_env=None, args=()):
        self.start(extra_env, args)
        out, _ = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, out, self.stderr()

    def stderr(self):
        return self.stderr_path.read_text()

    def wait_streaming(self, db, timeout=30):
        """Waits for penstock's "streaming" line, logged once START_REPLICATION
        succeeded. (pg_replication_slots.active is no signal: it is already
        true while the slot is being created, before its consistent point.)"""
        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"penstock exited with {self.proc.returncode}: {self.stderr()}")
            return "; streaming, " in self.stderr()
        wait_for(ready, timeout, what="penstock to start streaming")

    def wait_log(self, text, timeout=60):
        """Waits for text in this run's log; fails early if penstock exits."""
        def seen():
            if text in self.stderr():
                return True
            if self.proc.poll() is not None:
                raise AssertionError(f"penstock exited with {self.proc.returncode} before "
                                     f"logging {text!r}: {self.stderr()}")
            return False
        wait_for(seen, timeout, what=repr(text))

    def stop(self, timeout=60):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=timeout)
        return self.proc.returncode

    def kill(self):
        self.proc.kill()
        self.proc.wait(timeout=30)

    def events(self):
        """Every complete event written to the output directory, in file
        order. penstock may be in the middle of writing the last line of the
        newest file; like any reader that follows the files, this stops at
        the last newline."""
        out = []
        for f in sorted(self.out_dir.glob("*.jsonl")):
            text = f.read_text()
            for line in text[:text.rfind("\n") + 1].splitlines():
                out.append(json.loads(line))
        return out

    def checkpoint(self):
        p = self.state_dir / "jobs" / self.spec["name"] / "checkpoint.json"
        return json.loads(p.read_text()) if p.exists() else None


@pytest.fixture(scope="session")
def cluster():
    base = tempfile.mkdtemp(prefix="penstock-it-")
    os.chmod(base, 0o755)
    c = Cluster(base)
    yield c
    c.stop()
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def db(cluster):
    d = cluster.new_database()
    yield d
    # Release what the test's jobs left behind, so slots do not pile up. The
    # walsender of a job killed at the test's end may outlive it for a moment
    # (seconds on a loaded machine), and an active slot cannot be dropped:
    # wait for it to go first, rather than leave the slot to every later test.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and d.value(
            "SELECT count(*) FROM pg_replication_slots "
            "WHERE database = current_database() AND active"):
        time.sleep(0.1)
    d.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
              "WHERE database = current_database() AND NOT active")
    d.conn.close()


def db_first(request):
    """For a fixture that starts a penstock server: when the test also uses
    `db`, set that up first, so that the server (and its jobs' walsenders)
    goes before db's teardown, which waits for the database's slots to be
    released before it drops them."""
    if "db" in request.fixturenames:
        request.getfixturevalue("db")


def job_factory(tmp_path, db, default_type):
    """make(name, target, tables, **extra) -> Penstock on a spec for db; the
    processes still running at the end are killed by finish()."""
    made = []

    def make(name="job", tables=None, target=None, type=default_type, **extra):
        spec = {
            "name": name,
            "type": type,
            "source": {"url": db.url},
            "target": {"url": target or f"jsonl://{tmp_path}/out"},
        }
        if tables:
            spec["tables"] = tables
        spec.update(extra)
        p = Penstock(tmp_path, spec)
        made.append(p)
        return p

    def finish():
        for p in made:
            if p.proc and p.proc.poll() is None:
                p.kill()
    return make, finish


@pytest.fixture
def make_penstock(tmp_path, db):
    """A cdc job from db to JSON lines (or the given target)."""
    make, finish = job_factory(tmp_path, db, "cdc")
    yield make
    finish()


# --- comparing source and target ------------------------------------------

def pg_rows(database, table):
    """Every row of table as a sorted list of tuples of canonical text."""
    with database.cluster.connect(database.name) as c:
        c.autocommit = True
        with c.cursor() as cur:
            cur.execute(CANONICAL)
            cur.execute(f"SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass "
                        f"AND attnum > 0 AND NOT attisdropped AND attgenerated = '' "
                        f"ORDER BY attnum", (table,))
            cols = [r[0] for r in cur.fetchall()]
            # format('%s') gives the output function's text (a cast to text
            # would differ for bool, char(n), inet); NULL stays NULL.
            cur.execute("SELECT " + ", ".join(
                f'CASE WHEN "{c}" IS NULL THEN NULL ELSE format(\'%s\', "{c}") END' for c in cols)
                + f" FROM {table}")
            rows = cur.fetchall()
    return sorted(rows, key=lambda r: tuple((v is None, v or "") for v in r))


def pg_column_types(database, table):
    return [r[0] for r in database.execute(
        "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = %s::regclass "
        "AND attnum > 0 AND NOT attisdropped AND attgenerated = '' ORDER BY attnum", (table,))]


def _sqlite_text(value, pgtype, pgtext):
    """The SQLite value in the source's canonical text, per docs/types-sqlite.md."""
    if value is None:
        return None
    if pgtype == "boolean":
        return "t" if value == 1 else "f"
    if isinstance(value, bytes):
        return "\\x" + value.hex()
    if isinstance(value, float):
        # floats are equal when they are the same double
        if pgtext is not None and pgtext not in ("NaN", "Infinity", "-Infinity") \
                and float(pgtext) == value:
            return pgtext
        return repr(value)
    return str(value)


def sqlite_rows(path, table, pg_types, pg_reference):
    """Rows of the SQLite table in canonical text, aligned with the source's
    rows where floats need a numeric comparison."""
    name = table.split(".", 1)[1] if table.startswith("public.") else table
    c = sqlite3.connect(path)
    try:
        raw = c.execute(f'SELECT * FROM "{name}"').fetchall()
    finally:
        c.close()
    ref = {}
    for r in pg_reference:
        ref.setdefault(r[0], r)
    out = []
    for r in raw:
        first = _sqlite_text(r[0], pg_types[0], None)
        match = ref.get(first)
        out.append(tuple(_sqlite_text(v, t, match[i] if match else None)
                         for i, (v, t) in enumerate(zip(r, pg_types))))
    return sorted(out, key=lambda r: tuple((v is None, v or "") for v in r))


def wait_equal(source, target, tables, timeout=90, sqlite_path=None):
    """Polls until every table holds the same rows on both sides."""
    last = {}

    def equal():
        for t in tables:
            src = pg_rows(source, t)
            try:
                if sqlite_path:
                    dst = sqlite_rows(sqlite_path, t, pg_column_types(source, t), src)
                else:
                    dst = pg_rows(target, t)
            except (psycopg2.errors.UndefinedTable, sqlite3.OperationalError) as e:
                # the load has not created it yet: not equal yet, not an error
                last["table"], last["missing"] = t, str(e).strip()
                return False
            if src != dst:
                # Multiset differences in linear time: a scan of one list
                # per row of the other took minutes on 100k rows, so the
                # report outlived the deadline and showed a stale lag.
                have, got = collections.Counter(src), collections.Counter(dst)
                last["table"] = t
                last["missing"] = list((have - got).elements())[:5]
                last["extra"] = list((got - have).elements())[:5]
                last["counts"] = (len(src), len(dst))
                return False
        return True
    try:
        wait_for(equal, timeout, interval=0.2, what="target to equal source")
    except AssertionError as e:
        raise AssertionError(f"{e}: first difference {last}") from None


class TxnWriter(threading.Thread):
    """Commits one transaction of write(cursor) after another on its own
    connection until stopped; txns counts the committed ones. stop() raises
    what a statement raised."""

    def __init__(self, database):
        super().__init__(daemon=True)
        self.database = database
        self.halt = threading.Event()
        self.error = None
        self.txns = 0

    def write(self, cur):
        raise NotImplementedError

    def run(self):
        try:
            c = self.database.cluster.connect(self.database.name)
            c.autocommit = False
            with c.cursor() as cur:
                while not self.halt.is_set():
                    self.write(cur)
                    c.commit()
                    self.txns += 1
            c.close()
        except Exception as e:  # reported by stop
            self.error = e

    def stop(self):
        self.halt.set()
        self.join(30)
        if self.error:
            raise self.error


class Writer(TxnWriter):
    """Writes to the source in small transactions until stopped: inserts,
    updates (some changing the key), deletes, and inserts into an insert-only
    table without a key."""

    def __init__(self, database, seed=1):
        super().__init__(database)
        self.rand = random.Random(seed)
        self.seed = seed

    def write(self, cur):
        k = self.rand.randrange(1, 400)
        cur.execute("INSERT INTO w_items (id, v, pad) VALUES (%s, %s, repeat('x', %s)) "
                    "ON CONFLICT (id) DO UPDATE SET v = w_items.v + 1", (k, k, k % 50))
        cur.execute("UPDATE w_items SET v = v + 1 WHERE id = %s", (self.rand.randrange(1, 400),))
        if self.rand.random() < 0.1:
            cur.execute("DELETE FROM w_items WHERE id = %s", (self.rand.randrange(1, 400),))
        if self.rand.random() < 0.05:
            # the key changes: move a row to a free id above 1000
            cur.execute("UPDATE w_items SET id = %s WHERE id = %s",
                        (100000 * self.seed + 1000 + self.txns, self.rand.randrange(1, 400)))
        cur.execute("INSERT INTO w_history (k, note) VALUES (%s, %s)", (k, f"txn {self.txns}"))

    @staticmethod
    def create_tables(database, rows=300):
        database.execute("CREATE TABLE w_items (id int PRIMARY KEY, v int NOT NULL, pad text)")
        database.execute("CREATE TABLE w_history (k int, note text)")
        database.execute("ALTER TABLE w_history REPLICA IDENTITY FULL")
        database.execute(f"INSERT INTO w_items SELECT g, g, repeat('y', g % 30) "
                         f"FROM generate_series(1, {rows}) g")
        database.execute(f"INSERT INTO w_history SELECT g % 7, 'seed ' || g "
                         f"FROM generate_series(1, {rows}) g")


@pytest.fixture
def target_db(cluster):
    d = cluster.new_database()
    yield d
    d.conn.close()


@pytest.fixture
def make_job(tmp_path, db):
    """A load job (type sync by default) from db to the given target URL."""
    make, finish = job_factory(tmp_path, db, "sync")
    yield make
    finish()


# --- MariaDB (tests/integration/mariadb.py) ----------------------------------

from mariadb import MariaDB  # noqa: E402


@pytest.fixture(scope="module")
def mariadb_factory(tmp_path_factory):
    """make(time_zone=None, extra=None) -> a started throwaway MariaDB 10.11
    (binlog ROW/FULL/FULL/CRC32); every one made is stopped and removed at the
    end of the module."""
    made = []

    def make(**kw):
        m = MariaDB(str(tmp_path_factory.mktemp("mariadb")), **kw)
        made.append(m)
        return m.start()
    yield make
    for m in made:
        m.stop()
        shutil.rmtree(m.base, ignore_errors=True)


@pytest.fixture(scope="module")
def mariadb(mariadb_factory):
    """One MariaDB server (UTC) for the module."""
    return mariadb_factory()
