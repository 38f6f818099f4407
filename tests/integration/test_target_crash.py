"""A crash of the target server under load (issue 19).

The PostgreSQL sink commits its batches asynchronously (synchronous_commit
off in its session) and the source is acknowledged only up to what the
target's WAL flush has reached (src/sink/pg/pgsink.c NOTES 7,
src/core/pipeline.c note 6). A crash of the target loses its newest commits,
each batch whole with its checkpoint, and the source must still hold
everything after the checkpoint that survived.

The target here is a separate cluster with PostgreSQL's default durability
and a WAL writer that flushes only every 10 s, so that a crash under load
loses seconds of commits: each test checks that it did (the checkpoint in
the target went back), then that the target ends equal to the source, no row
missing and none doubled (w_history has no key: a batch applied twice would
show as duplicate rows). The crash is `pg_ctl -m immediate`; penstock then
retries, as a restarted `penstock run` or by itself as a server job.
"""
import json
import os
import shutil
import tempfile

import pytest

from conftest import Cluster, Database, Writer, wait_equal, wait_for
from test_server import Server, spec_for, start_streaming, transitions

W_TABLES = ["public.w_items", "public.w_history"]
# Async commits stay in the WAL buffers for up to 10 s: only penstock's own
# durability waits (idle for 250 ms, a clean stop, a restart) flush them.
SLOW_WAL_WRITER = ("wal_writer_delay=10000ms", "wal_writer_flush_after=1GB", "wal_buffers=64MB")
FAST_RETRY = {"initial_backoff_ms": 200, "max_backoff_ms": 1000}


def lsn(text):
    hi, lo = text.split("/")
    return (int(hi, 16) << 32) | int(lo, 16)


@pytest.fixture
def durable_target():
    """A target cluster of this test alone, with PostgreSQL's default
    durability and a slow WAL writer, which the test crashes."""
    base = tempfile.mkdtemp(prefix="penstock-tcrash-")
    os.chmod(base, 0o755)   # the server runs as postgres when the tests run as root
    c = Cluster(base, durable=True, settings=SLOW_WAL_WRITER)
    yield c
    c.stop()
    shutil.rmtree(base, ignore_errors=True)


def query(cluster, dbname, sql, params=None):
    """One value, on a connection of its own (the target comes and goes)."""
    c = cluster.connect(dbname)
    try:
        with c.cursor() as cur:
            cur.execute(sql, params)
            row = cur.fetchone()
            return row[0] if row else None
    finally:
        c.close()


def checkpoint_position(cluster, dbname, job):
    body = query(cluster, dbname, "SELECT body FROM penstock.checkpoint WHERE job = %s", (job,))
    return lsn(json.loads(body)["position"]) if body else 0


def crash_under_load(cluster, dbname, job, rows_before, alive):
    """Waits until the target applied more rows and holds WAL not yet
    flushed, then crashes it at once. Returns the checkpoint position the
    target showed just before the crash. alive() raises when penstock has
    given up meanwhile (with what it said)."""
    def ready():
        alive()
        n = query(cluster, dbname, "SELECT count(*) FROM w_history")
        unflushed = query(cluster, dbname, "SELECT pg_current_wal_insert_lsn() > "
                          "pg_current_wal_flush_lsn()")
        return n >= rows_before + 300 and unflushed
    wait_for(ready, 90, interval=0.02, what="the target to apply more rows, some not yet flushed")
    before = checkpoint_position(cluster, dbname, job)
    cluster.crash()
    return before


def reconnect(cluster, name):
    d = Database.__new__(Database)
    d.cluster, d.name = cluster, name
    d.conn = cluster.connect(name)
    return d


def test_target_crash_under_load_then_penstock_run_again(db, durable_target, make_job):
    """Two crashes of the target under writes, penstock run started again
    after each: the crashes lose commits, and nothing is missing or doubled."""
    dst = durable_target.new_database()
    Writer.create_tables(db, rows=2000)
    writer = Writer(db)
    writer.start()
    lost = 0
    try:
        p = make_job("tcrash", target=dst.url)
        p.start()
        p.wait_streaming(db)
        def alive():
            if p.proc.poll() is not None:
                raise AssertionError(f"penstock exited with {p.proc.returncode}: {p.stderr()}")

        for _ in range(2):
            rows = query(durable_target, dst.name, "SELECT count(*) FROM w_history")
            before = crash_under_load(durable_target, dst.name, "tcrash", rows, alive)
            assert p.proc.wait(timeout=60) != 0, "penstock went on without its target"
            durable_target.restart()
            after = checkpoint_position(durable_target, dst.name, "tcrash")
            lost += after < before
            p.start()
            p.wait_streaming(db, timeout=60)
            assert "resuming from checkpoint" in p.stderr()
        done = writer.txns
        wait_for(lambda: writer.txns > done + 100, 60, what="more source transactions")
    finally:
        writer.stop()
    dst = reconnect(durable_target, dst.name)
    wait_equal(db, dst, W_TABLES, timeout=120)
    assert p.stop() == 0
    # the crashes did lose commits penstock had made (else this proved little)
    assert lost >= 1, "no crash lost a commit: the WAL writer flushed everything"
    dst.conn.close()


@pytest.fixture
def server(tmp_path):
    s = Server(tmp_path / "state").start()
    yield s
    s.stop()


def test_target_crash_under_load_server_job_retries(db, durable_target, server):
    """The same as a server job, which fails while the target is down and
    retries by itself until it streams again."""
    dst = durable_target.new_database()
    Writer.create_tables(db, rows=2000)
    writer = Writer(db, seed=2)
    writer.start()
    try:
        start_streaming(server, spec_for(db, dst.url, retry=FAST_RETRY))
        def alive():
            job = server.job("orders")
            assert job["state"] == "running", job

        rows = query(durable_target, dst.name, "SELECT count(*) FROM w_history")
        before = crash_under_load(durable_target, dst.name, "orders", rows, alive)
        wait_for(lambda: server.job("orders")["state"] == "failed", 60, what="the job to fail")
        durable_target.restart()
        after = checkpoint_position(durable_target, dst.name, "orders")
        last = {}

        def streaming():
            last["job"] = job = server.job("orders")
            return job["state"] == "running" and job["phase"] == "streaming"
        try:
            wait_for(streaming, 120, what="streaming again")
        except AssertionError as e:
            raise AssertionError(f"{e}; last error: {last['job'].get('last_error')}") from None
        done = writer.txns
        wait_for(lambda: writer.txns > done + 100, 60, what="more source transactions")
        alive()
    finally:
        writer.stop()
    dst = reconnect(durable_target, dst.name)
    wait_equal(db, dst, W_TABLES, timeout=120)
    assert after < before, "the crash lost no commit: the WAL writer flushed everything"
    path = transitions(server, "orders")
    assert "failed" in path and path[-1] == "running", path
    dst.conn.close()
