"""Integration test harness: a real PostgreSQL 15 cluster per test session
(started by scripts/pgtmp.sh in a temporary directory on a free loopback
port), a fresh database per test, and a driver for the real penstock binary.

Nothing here sleeps to wait: every wait polls a condition with a deadline.
"""
import json
import os
import pathlib
import shutil
import signal
import subprocess
import tempfile
import time

import psycopg2
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
PGTMP = ROOT / "scripts" / "pgtmp.sh"
BIN = os.environ.get("PENSTOCK_BIN", str(ROOT / "build" / "penstock"))


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
    def __init__(self, base):
        self.base = base
        self.port = int(subprocess.check_output([str(PGTMP), "freeport"]).decode())
        self.dir = os.path.join(base, "pg")
        subprocess.run([str(PGTMP), "start", self.dir, str(self.port)], check=True)
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

    def start(self, extra_env=None):
        self.write_spec()
        self.runs += 1
        self.stderr_path = self.workdir / f"stderr.{self.runs}.log"
        env = dict(self.env, **(extra_env or {}))
        self.proc = subprocess.Popen(
            [BIN, "run", "--state-dir", str(self.state_dir), str(self.spec_path)],
            stdout=subprocess.PIPE if self.spec["target"]["url"] == "jsonl:-" else subprocess.DEVNULL,
            stderr=open(self.stderr_path, "w"), env=env)
        return self.proc

    def run_to_exit(self, timeout=60, extra_env=None):
        self.start(extra_env)
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

    def stop(self, timeout=60):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=timeout)
        return self.proc.returncode

    def kill(self):
        self.proc.kill()
        self.proc.wait(timeout=30)

    def events(self):
        """Every event written to the output directory, in file order."""
        out = []
        for f in sorted(self.out_dir.glob("*.jsonl")):
            for line in f.read_text().splitlines():
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
    # Release what the test's jobs left behind, so slots do not pile up.
    d.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
              "WHERE database = current_database() AND NOT active")
    d.conn.close()


@pytest.fixture
def make_penstock(tmp_path, db):
    made = []

    def make(name="job", tables=None, target=None, **extra):
        spec = {
            "name": name,
            "type": "cdc",
            "source": {"url": db.url},
            "target": {"url": target or f"jsonl://{tmp_path}/out"},
        }
        if tables:
            spec["tables"] = tables
        spec.update(extra)
        p = Penstock(tmp_path, spec)
        made.append(p)
        return p

    yield make
    for p in made:
        if p.proc and p.proc.poll() is None:
            p.kill()
