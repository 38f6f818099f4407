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
import signal
import tempfile
import time

import pytest

from conftest import Cluster, Database, Writer, wait_equal, wait_for, lsn_int
from test_server import Server, server, spec_for, start_streaming, transitions  # noqa: F401

W_TABLES = ["public.w_items", "public.w_history"]
# Async commits stay unflushed for up to 10 s (only penstock's own
# durability waits flush them: idle for 20 ms, a clean stop, a restart), and
# in the WAL buffers until a page fills; a process crash loses what is there.
SLOW_WAL_WRITER = ("wal_writer_delay=10000ms", "wal_writer_flush_after=1GB", "wal_buffers=64MB")
FAST_RETRY = {"initial_backoff_ms": 200, "max_backoff_ms": 1000}


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
    return lsn_int(json.loads(body)["position"]) if body else 0


def server_processes(cluster, title):
    """The pids of the cluster's processes whose title starts with title."""
    with open(os.path.join(cluster.dir, "data", "postmaster.pid")) as f:
        pm = int(f.readline())
    out = []
    with open(f"/proc/{pm}/task/{pm}/children") as f:
        for pid in f.read().split():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as c:
                    if c.read().startswith(b"postgres: " + title.encode()):
                        out.append(int(pid))
            except OSError:
                pass
    return out


def crash_under_load(cluster, dbname, job, rows_before, alive):
    """Crashes the target at a moment when it holds a committed checkpoint
    whose commit record is still in its WAL buffers, written by nobody, so
    that the crash loses it.

    Nothing may write those buffers between that moment and the crash: the
    WAL writer is held (SIGSTOP) while the test looks, as a busy machine can
    hold it (otherwise it writes every page as it fills, and a crash loses
    only what a page not yet full holds); once the moment is found, the
    database's backends are held too (penstock's own, which would write the
    buffers with its next synchronous commit), the postmaster gets SIGQUIT
    (`pg_ctl -m immediate`), and the held processes are let go, to quit at
    once on the SIGQUIT that waits for them. The moment: between two looks
    20 ms apart a newer checkpoint became visible while the WAL write
    position (pg_current_wal_lsn) did not move, after the target applied
    300 more rows. Returns that checkpoint's position. alive() raises when
    penstock has given up meanwhile (with what it said)."""
    held = server_processes(cluster, "walwriter")
    conn = cluster.connect(dbname)
    prev = None
    deadline = time.monotonic() + 120
    for pid in held:
        os.kill(pid, signal.SIGSTOP)
    try:
        with conn.cursor() as cur:
            while True:
                alive()
                cur.execute("SELECT body, pg_current_wal_lsn()::text, "
                            "(SELECT count(*) FROM w_history) FROM penstock.checkpoint "
                            "WHERE job = %s", (job,))
                body, written, rows = cur.fetchone()
                pos = lsn_int(json.loads(body)["position"])
                if prev and rows >= rows_before + 300 and written == prev[1] and pos > prev[0]:
                    break
                prev = (pos, written)
                if time.monotonic() > deadline:
                    raise AssertionError("the target never held a commit not yet written")
                time.sleep(0.02)
        conn.close()
        for pid in server_processes(cluster, f"postgres {dbname} "):
            os.kill(pid, signal.SIGSTOP)
            held.append(pid)
        cluster.crash(wait=False)
    finally:
        conn.close()
        for pid in held:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
    wait_for(lambda: not os.path.exists(os.path.join(cluster.dir, "data", "postmaster.pid")),
             60, 0.01, what="the target to quit")
    return pos


def steady_source(db):
    """The session's cluster commits with synchronous_commit off, so its WAL
    (and the stream penstock reads) arrives in bursts once per WAL writer
    round, with idle gaps in which penstock makes its commits durable. A
    source committing durably streams steadily, as under load in
    production: penstock is never idle long enough to insist."""
    db.execute(f'ALTER DATABASE "{db.name}" SET synchronous_commit = on')


def reconnect(cluster, name):
    d = Database.__new__(Database)
    d.cluster, d.name = cluster, name
    d.conn = cluster.connect(name)
    return d


def test_target_crash_under_load_then_penstock_run_again(db, durable_target, make_job):
    """Two crashes of the target under writes, penstock run started again
    after each: the crashes lose commits, and nothing is missing or doubled."""
    dst = durable_target.new_database()
    steady_source(db)
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

        # at least two crashes, and more (up to six) until one lost a commit:
        # on a busy machine penstock's own synchronous commit of an idle
        # moment may flush the WAL between the look and the crash
        crashes = 0
        while crashes < 2 or (lost == 0 and crashes < 6):
            crashes += 1
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
    assert lost >= 1, f"none of {crashes} crashes lost a commit: the WAL was flushed each time"
    dst.conn.close()


def test_target_crash_under_load_server_job_retries(db, durable_target, server):
    """The same as a server job, which fails while the target is down and
    retries by itself until it streams again."""
    dst = durable_target.new_database()
    steady_source(db)
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


def has_column(cluster, dbname, table, column):
    return bool(query(cluster, dbname, "SELECT count(*) FROM pg_attribute WHERE attrelid = "
                      "%s::regclass AND attname = %s AND NOT attisdropped", (table, column)))


def crash_after_schema_change(cluster, dbname, src, alive):
    """Adds a column to w_items on the source, then crashes the target at a
    moment it has applied the change (inside a batch's transaction, with
    its checkpoint) but holds its commit in WAL buffers nobody wrote: the
    WAL writer is held before the change, and the crash comes only when the
    column is visible in the target while the WAL write position is still
    where it was before it became visible. Should something write the WAL
    meanwhile (a synchronous commit of penstock's), the next column is
    tried. Returns the column the crash certainly lost."""
    for attempt in range(5):
        column = f"tag{attempt}"
        held = server_processes(cluster, "walwriter")
        conn = cluster.connect(dbname)
        for pid in held:
            os.kill(pid, signal.SIGSTOP)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT pg_current_wal_lsn()::text")
                written = cur.fetchone()[0]
                src.execute(f"ALTER TABLE w_items ADD COLUMN {column} text DEFAULT 'a{attempt}'")
                deadline = time.monotonic() + 120
                while True:
                    alive()
                    cur.execute("SELECT pg_current_wal_lsn()::text, count(*) FROM pg_attribute "
                                "WHERE attrelid = 'w_items'::regclass AND attname = %s",
                                (column,))
                    now, seen = cur.fetchone()
                    if seen:
                        break
                    written = now   # before the change is visible: the WAL may move
                    if time.monotonic() > deadline:
                        raise AssertionError(f"the target never added {column}")
                    time.sleep(0.01)
            conn.close()
            if now != written:
                continue   # the change may be on disk already: another one
            for pid in server_processes(cluster, f"postgres {dbname} "):
                os.kill(pid, signal.SIGSTOP)
                held.append(pid)
            cluster.crash(wait=False)
            return column
        finally:
            conn.close()
            for pid in held:
                try:
                    os.kill(pid, signal.SIGCONT)
                except ProcessLookupError:
                    pass
    raise AssertionError("the target's WAL was written every time before a crash could come")


def test_target_crash_loses_a_schema_change_which_is_applied_again(db, durable_target,
                                                                      make_job):
    """A column added on the source is applied in the target's batch
    transaction; a crash of the target loses that commit with its checkpoint
    (the column is gone after the restart), and since the source was not
    acknowledged past it, the next run applies the change again: the target
    ends with the column and every row equal to the source."""
    dst = durable_target.new_database()
    steady_source(db)
    Writer.create_tables(db, rows=2000)
    writer = Writer(db, seed=3)
    writer.start()
    try:
        p = make_job("tcrashddl", target=dst.url)
        p.start()
        p.wait_streaming(db)

        def alive():
            if p.proc.poll() is not None:
                raise AssertionError(f"penstock exited with {p.proc.returncode}: {p.stderr()}")

        column = crash_after_schema_change(durable_target, dst.name, db, alive)
        assert p.proc.wait(timeout=60) != 0, "penstock went on without its target"
        wait_for(lambda: not os.path.exists(os.path.join(durable_target.dir, "data",
                                                         "postmaster.pid")),
                 60, 0.01, what="the target to quit")
        durable_target.restart()
        # the crash lost the change (else this proved little)
        assert not has_column(durable_target, dst.name, "w_items", column)
        p.start()
        p.wait_streaming(db, timeout=60)
        assert "resuming from checkpoint" in p.stderr()
        done = writer.txns
        wait_for(lambda: writer.txns > done + 100, 60, what="more source transactions")
    finally:
        writer.stop()
    dst = reconnect(durable_target, dst.name)
    wait_equal(db, dst, W_TABLES, timeout=120)
    assert has_column(durable_target, dst.name, "w_items", column)
    assert p.stop() == 0
    dst.conn.close()
