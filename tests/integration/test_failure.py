"""Failure and recovery of a job run by `penstock server` (issue 5, items
1-4): either end stopped under writes and started again (failed with
retries, then running by itself, target equal to source), retry attempts
running out, a dropped slot and `recover resync`, `recover skip` recording
the gap, degraded health while the changes already read are applied after
the source went away, and bad or refused recover requests.

A test that stops a PostgreSQL stops its own cluster (own_cluster), never
the session's shared one. Nothing sleeps to wait: every wait polls.
"""
import json
import os
import shutil
import subprocess
import tempfile
import threading

import psycopg2
import pytest

from conftest import PGBIN, Cluster, Writer, wait_equal, wait_for
from test_server import Server, spec_for

W_TABLES = ["public.w_items", "public.w_history"]
# Fast retries, so that an outage of a few seconds is retried several times.
FAST_RETRY = {"initial_backoff_ms": 200, "max_backoff_ms": 1000}


# --- helpers ------------------------------------------------------------------

def lsn(text):
    hi, lo = text.split("/")
    return (int(hi, 16) << 32) | int(lo, 16)


def pg_ctl(cluster, *args):
    cmd = [str(PGBIN / "pg_ctl"), "-D", os.path.join(cluster.dir, "data"), *args]
    if os.getuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--", *cmd]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)


def stop_pg(cluster, mode):
    """Stops the cluster: fast (sessions terminated with 57P01) or
    immediate (as a crash: connections simply break)."""
    pg_ctl(cluster, "-m", mode, "-w", "stop")


def start_pg(cluster):
    """Starts a stopped cluster again with the settings scripts/pgtmp.sh gave it."""
    opts = (f"-c port={cluster.port} -c listen_addresses=127.0.0.1 "
            f"-c unix_socket_directories={cluster.dir} -c wal_level=logical "
            f"-c max_replication_slots=32 -c max_wal_senders=32 -c max_connections=100 "
            f"-c fsync=off -c synchronous_commit=off -c full_page_writes=off")
    pg_ctl(cluster, "-o", opts, "-l", os.path.join(cluster.dir, "server.log"), "-w", "-t", "60",
           "start")


@pytest.fixture
def own_cluster():
    """A PostgreSQL of this test alone, which it may stop and start."""
    base = tempfile.mkdtemp(prefix="penstock-fail-")
    os.chmod(base, 0o755)   # the server runs as postgres when the tests run as root
    c = Cluster(base)
    yield c
    c.stop()
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def server(tmp_path):
    s = Server(tmp_path / "state").start()
    yield s
    s.stop()


@pytest.fixture
def own_server(tmp_path, own_cluster):
    """A server for a test with its own cluster, torn down before that
    cluster: deleting the jobs releases their slots while it still runs."""
    s = Server(tmp_path / "state").start()
    yield s
    s.stop()


class OutageWriter(threading.Thread):
    """Writes small transactions to w_items/w_history until stopped, riding
    out an outage of its server: a failed transaction is simply not there
    (rolled back), and the writer reconnects once the server is back."""

    def __init__(self, database):
        super().__init__(daemon=True)
        self.database = database
        self.halt = threading.Event()
        self.txns = 0
        self.failures = 0

    def run(self):
        conn = None
        n = 0
        while not self.halt.is_set():
            try:
                if conn is None:
                    conn = self.database.cluster.connect(self.database.name)
                    conn.autocommit = False
                with conn.cursor() as cur:
                    n += 1
                    k = n % 300 + 1
                    cur.execute("INSERT INTO w_items (id, v, pad) VALUES (%s, %s, 'w') "
                                "ON CONFLICT (id) DO UPDATE SET v = w_items.v + 1", (k, n))
                    if n % 7 == 0:
                        cur.execute("DELETE FROM w_items WHERE id = %s", ((n * 13) % 300 + 1,))
                    cur.execute("INSERT INTO w_history (k, note) VALUES (%s, %s)", (k, f"w {n}"))
                conn.commit()
                self.txns += 1
                self.halt.wait(0.005)          # a steady trickle, not a flood
            except psycopg2.Error:
                self.failures += 1
                try:
                    conn.close()
                except Exception:
                    pass
                conn = None
                self.halt.wait(0.1)            # pacing of reconnect attempts

    def stop(self):
        self.halt.set()
        self.join(30)


def reconnect(database):
    """A Database whose cluster restarted: a fresh connection."""
    try:
        database.conn.close()
    except Exception:
        pass
    database.conn = database.cluster.connect(database.name)


def transitions(server, name):
    return [e["to"] for e in server.call("GET", f"/v1/jobs/{name}/events")[1]["events"]
            if e["kind"] == "transition"]


def start_streaming(server, spec):
    status, job = server.call("POST", "/v1/jobs", spec)
    assert status == 201, job
    assert server.call("POST", f"/v1/jobs/{spec['name']}/start")[0] == 202
    wait_for(lambda: server.job(spec["name"])["phase"] == "streaming", 120, what="streaming")


def writes_go_on(writer, n=30):
    done = writer.txns
    wait_for(lambda: writer.txns >= done + n, 60, what=f"{n} more source transactions")


def retried_while_down(server, name, retries=2):
    """Polls until the job is failed with at least `retries` consecutive
    failed runs and the next retry time shown; returns that job."""
    seen = {}

    def failed_and_counting():
        job = server.job(name)
        if job["state"] == "failed" and job["attempts"] >= retries and job["next_retry_at"]:
            seen["job"] = job
            return True
        assert job["state"] in ("running", "starting", "failed"), job
        return False
    wait_for(failed_and_counting, 90, interval=0.05, what=f"{name} failed after {retries} attempts")
    return seen["job"]


def back_to_streaming(server, name):
    wait_for(lambda: server.job(name)["state"] == "running" and
             server.job(name)["phase"] == "streaming", 120, what=f"{name} streaming again")


# --- an end stopped under writes: failed, retried, running by itself ---------

def test_source_stopped_under_writes_fails_retries_and_runs_again(own_cluster, own_server, target_db):
    server = own_server
    src = own_cluster.new_database()
    Writer.create_tables(src, rows=200)
    writer = OutageWriter(src)
    writer.start()
    try:
        start_streaming(server, spec_for(src, target_db.url, retry=FAST_RETRY))
        writes_go_on(writer)
        stop_pg(own_cluster, "immediate")          # as a crash, mid-stream
        job = retried_while_down(server, "orders")
        err = job["last_error"]
        assert err["retryable"] is True and err["class"] == "connection", err
        assert err["hint"] and "retries by itself" in err["hint"]
        assert job["retry"]["next_at"] == job["next_retry_at"]
        start_pg(own_cluster)
        reconnect(src)
        back_to_streaming(server, "orders")
        writes_go_on(writer)
    finally:
        writer.stop()
    wait_equal(src, target_db, W_TABLES)
    assert writer.failures > 0                      # the writes did meet the outage
    job = server.job("orders")
    assert job["state"] == "running" and job["attempts"] == 0 and job["next_retry_at"] is None
    path = transitions(server, "orders")
    assert path[:4] == ["created", "checking", "starting", "running"]
    assert path[4] == "failed" and path[-2:] == ["starting", "running"], path
    assert "failed_permanently" not in path


def test_target_stopped_mid_batch_fails_retries_and_runs_again(own_cluster, own_server, db):
    server = own_server
    dst = own_cluster.new_database()
    Writer.create_tables(db, rows=200)
    writer = Writer(db)
    writer.start()
    try:
        start_streaming(server, spec_for(db, dst.url, retry=FAST_RETRY))
        writes_go_on(writer, 50)
        stop_pg(own_cluster, "fast")               # sessions end with admin_shutdown
        job = retried_while_down(server, "orders")
        assert job["last_error"]["retryable"] is True, job["last_error"]
        writes_go_on(writer, 30)                   # the source moves on meanwhile
        start_pg(own_cluster)
        reconnect(dst)
        back_to_streaming(server, "orders")
        writes_go_on(writer)
    finally:
        writer.stop()
    wait_equal(db, dst, W_TABLES)
    path = transitions(server, "orders")
    assert "failed" in path and path[-2:] == ["starting", "running"], path


# --- attempts running out ------------------------------------------------------

def test_max_attempts_exhausted_fails_permanently(server, db, target_db):
    """The target refuses connections; with retry.max_attempts 2 the job
    gives up after two retries, with a hint."""
    Writer.create_tables(db, rows=100)
    start_streaming(server, spec_for(db, target_db.url,
                                     retry=dict(FAST_RETRY, max_attempts=2)))
    admin = target_db.cluster.connect()
    try:
        with admin.cursor() as cur:
            cur.execute(f'ALTER DATABASE "{target_db.name}" WITH ALLOW_CONNECTIONS false')
            cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = %s", (target_db.name,))
        db.execute("INSERT INTO w_items VALUES (9001, 1, 'after the outage began')")
        job = server.wait_state("orders", "failed_permanently", timeout=60)
        assert job["attempts"] == 3, job          # the first failure and two retries
        err = job["last_error"]
        assert err["retryable"] is False and "retry.max_attempts" in err["hint"], err
        path = transitions(server, "orders")
        assert path[-6:] == ["running", "failed", "starting", "failed", "starting",
                             "failed_permanently"], path
    finally:
        with admin.cursor() as cur:
            cur.execute(f'ALTER DATABASE "{target_db.name}" WITH ALLOW_CONNECTIONS true')
        admin.close()
        reconnect(target_db)
