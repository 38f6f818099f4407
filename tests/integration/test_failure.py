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

from conftest import PGBIN, Cluster, Writer, db_first, lsn_int, wait_equal, wait_for
from test_server import Server, server, spec_for, start_streaming, transitions  # noqa: F401

W_TABLES = ["public.w_items", "public.w_history"]
# Fast retries, so that an outage of a few seconds is retried several times.
FAST_RETRY = {"initial_backoff_ms": 200, "max_backoff_ms": 1000}


# --- helpers ------------------------------------------------------------------

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
def own_server(tmp_path, own_cluster, request):
    """A server for a test with its own cluster, torn down before that
    cluster: deleting the jobs releases their slots while it still runs
    (and before `db`: conftest.db_first)."""
    db_first(request)
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
    last = {}

    def streaming():
        last["job"] = job = server.job(name)
        return job["state"] == "running" and job["phase"] == "streaming"
    try:
        wait_for(streaming, 120, what=f"{name} streaming again")
    except AssertionError as e:
        raise AssertionError(f"{e}; job: {json.dumps(last.get('job'))[:3000]}") from None


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

def test_max_attempts_exhausted_fails_permanently_and_recover_retry_resumes(server, db, target_db):
    """The target refuses connections; with retry.max_attempts 2 the job
    gives up after two retries, with a hint. Once the target takes
    connections again, `recover retry` resumes from the checkpoint."""
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
        assert "recover" in job["allowed_actions"]
        shown = server.cli("show", "orders", check=0).stdout
        assert "failed_permanently" in shown and "retry.max_attempts" in shown, shown
        # the cause goes away; recover retry resumes from the checkpoint
        with admin.cursor() as cur:
            cur.execute(f'ALTER DATABASE "{target_db.name}" WITH ALLOW_CONNECTIONS true')
        p = server.cli("recover", "orders", "--strategy", "retry", check=0)
        assert "recover retry" in p.stdout, p.stdout
        back_to_streaming(server, "orders")
    finally:
        with admin.cursor() as cur:
            cur.execute(f'ALTER DATABASE "{target_db.name}" WITH ALLOW_CONNECTIONS true')
        admin.close()
        reconnect(target_db)
    wait_equal(db, target_db, W_TABLES)
    assert target_db.value("SELECT v FROM w_items WHERE id = 9001") == 1
    assert server.job("orders")["attempts"] == 0
    assert transitions(server, "orders")[-2:] == ["starting", "running"]


# --- slot lost: failed_permanently, recover resync / skip ------------------------

def slot_active_pid(db, slot):
    return db.value("SELECT active_pid FROM pg_replication_slots WHERE slot_name = %s", (slot,))


def drop_slot_under_the_job(db, slot="penstock_orders"):
    """Ends the job's walsender and drops its slot before the job's retry
    takes it again (the retry waits a backoff first)."""
    def dropped():
        db.execute("SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots "
                   "WHERE slot_name = %s AND active_pid IS NOT NULL", (slot,))
        try:
            db.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
        except psycopg2.errors.ObjectInUse:
            return False                          # the walsender had not exited yet
        except psycopg2.errors.UndefinedObject:
            return True
        return True
    wait_for(dropped, 30, interval=0.02, what=f"slot {slot} dropped")


def fails_for_good_on_the_lost_slot(server, db):
    job = server.wait_state("orders", "failed_permanently", timeout=60)
    err = job["last_error"]
    assert err["retryable"] is False and err["class"] == "checkpoint", err
    assert "penstock_orders" in err["message"]
    assert "resync" in err["hint"] and "skip" in err["hint"], err
    assert set(job["allowed_actions"]) >= {"recover", "stop"}
    return job


def test_dropped_slot_fails_permanently_and_recover_resync_reloads(server, db, target_db):
    Writer.create_tables(db, rows=300)
    writer = Writer(db)
    writer.start()
    try:
        start_streaming(server, spec_for(db, target_db.url))
        writes_go_on(writer)
        drop_slot_under_the_job(db)
        fails_for_good_on_the_lost_slot(server, db)
        writes_go_on(writer)                       # changes the lost slot would have held
        p = server.cli("recover", "orders", "--strategy", "resync", check=0)
        assert "recover resync" in p.stdout
        back_to_streaming(server, "orders")
        writes_go_on(writer)
    finally:
        writer.stop()
    wait_equal(db, target_db, W_TABLES)
    events = server.call("GET", "/v1/jobs/orders/events")[1]["events"]
    resync = [e for e in events if e["kind"] == "resync"]
    assert len(resync) == 1 and "2 tables emptied" in resync[0]["reason"], resync
    assert not [e for e in events if e["kind"] == "gap"]   # every table was loaded again
    assert slot_active_pid(db, "penstock_orders")          # the new slot streams


def test_recover_resync_of_named_tables_keeps_the_others(server, db, target_db):
    """Only w_history is loaded again; w_items keeps its target rows, and
    its changes from the lost slot's time are the recorded gap."""
    Writer.create_tables(db, rows=100)
    start_streaming(server, spec_for(db, target_db.url))
    db.execute("INSERT INTO w_items VALUES (5001, 1, 'streamed')")
    wait_for(lambda: target_db.value("SELECT count(*) FROM w_items WHERE id = 5001") == 1, 60,
             what="a streamed row")
    drop_slot_under_the_job(db)
    fails_for_good_on_the_lost_slot(server, db)
    db.execute("INSERT INTO w_items VALUES (5002, 1, 'lost with the slot')")
    db.execute("INSERT INTO w_history VALUES (77, 'lost with the slot, loaded again')")
    target_db.execute("INSERT INTO w_history VALUES (78, 'only in the target')")
    status, job = server.call("POST", "/v1/jobs/orders/recover",
                              {"strategy": "resync", "tables": ["public.w_history"]})
    assert status == 202 and job["state"] == "starting", job
    back_to_streaming(server, "orders")
    db.execute("INSERT INTO w_items VALUES (5003, 1, 'after the recover')")
    wait_for(lambda: target_db.value("SELECT count(*) FROM w_items WHERE id = 5003") == 1, 60,
             what="a row written after the recover")
    wait_equal(db, target_db, ["public.w_history"])
    # w_items: everything but the change made while the slot was gone
    assert target_db.value("SELECT count(*) FROM w_items WHERE id = 5002") == 0
    assert target_db.value("SELECT count(*) FROM w_items") == \
        db.value("SELECT count(*) FROM w_items") - 1
    events = server.call("GET", "/v1/jobs/orders/events")[1]["events"]
    gaps = [e for e in events if e["kind"] == "gap"]
    assert len(gaps) == 1 and "1 table" in gaps[0]["reason"], gaps
    assert lsn_int(gaps[0]["from"]) < lsn_int(gaps[0]["to"])


def test_recover_skip_records_the_gap(server, db, target_db):
    Writer.create_tables(db, rows=100)
    start_streaming(server, spec_for(db, target_db.url))
    db.execute("INSERT INTO w_items VALUES (6001, 1, 'streamed')")
    wait_for(lambda: target_db.value("SELECT count(*) FROM w_items WHERE id = 6001") == 1, 60,
             what="a streamed row")
    drop_slot_under_the_job(db)
    job = fails_for_good_on_the_lost_slot(server, db)
    applied = job["positions"]["applied"]
    db.execute("INSERT INTO w_items VALUES (6002, 1, 'skipped')")
    end = db.value("SELECT pg_current_wal_lsn()::text")
    p = server.cli("recover", "orders", "--strategy", "skip", "--position", "latest", check=0)
    assert "recover skip" in p.stdout
    back_to_streaming(server, "orders")
    db.execute("INSERT INTO w_items VALUES (6003, 1, 'after the skip')")
    wait_for(lambda: target_db.value("SELECT count(*) FROM w_items WHERE id = 6003") == 1, 60,
             what="a row written after the skip")
    assert target_db.value("SELECT count(*) FROM w_items WHERE id = 6002") == 0
    events = server.call("GET", "/v1/jobs/orders/events")[1]["events"]
    gaps = [e for e in events if e["kind"] == "gap"]
    assert len(gaps) == 1, events
    gap = gaps[0]
    # from: where the target stood; to: at least the log's end when skip was asked
    assert gap["from"] == applied, (gap, applied)
    assert lsn_int(gap["to"]) >= lsn_int(end) > lsn_int(gap["from"]), (gap, end)
    assert "skipped" in gap["reason"] and gap["actor"] == "cli"
    shown = server.cli("events", "orders", check=0).stdout
    assert "gap" in shown


def test_recover_skip_to_a_position_passes_over_a_poison_change(server, db, target_db):
    """A change the target refuses (NOT NULL there, not on the source) fails
    the job for good; skip to that transaction's position continues with the
    next one, the slot kept."""
    Writer.create_tables(db, rows=10)
    start_streaming(server, spec_for(db, target_db.url))
    target_db.execute("UPDATE w_items SET pad = '' WHERE pad IS NULL")
    target_db.execute("ALTER TABLE w_items ALTER COLUMN pad SET NOT NULL")
    db.execute("INSERT INTO w_items VALUES (7001, 1, NULL)")
    # the position just past that commit (pg_current_wal_lsn() may lag behind it:
    # the test clusters commit asynchronously)
    poison = db.value("SELECT pg_current_wal_insert_lsn()::text")
    job = server.wait_state("orders", "failed_permanently", timeout=60)
    assert job["last_error"]["sqlstate"] == "23502" and job["last_error"]["class"] == "schema"
    db.execute("INSERT INTO w_items VALUES (7002, 1, 'next')")
    # a position before the checkpoint is refused by the recover step
    status, job = server.call("POST", "/v1/jobs/orders/recover",
                              {"strategy": "skip", "position": "0/10"})
    assert status == 202
    job = server.wait_state("orders", "failed_permanently", timeout=60)
    assert "not after the checkpoint" in job["last_error"]["message"]
    status, job = server.call("POST", "/v1/jobs/orders/recover",
                              {"strategy": "skip", "position": poison})
    assert status == 202, job
    back_to_streaming(server, "orders")
    wait_for(lambda: target_db.value("SELECT count(*) FROM w_items WHERE id = 7002") == 1, 60,
             what="the change after the skipped one")
    assert target_db.value("SELECT count(*) FROM w_items WHERE id = 7001") == 0
    gap = [e for e in server.call("GET", "/v1/jobs/orders/events")[1]["events"]
           if e["kind"] == "gap"][-1]
    assert gap["to"] == poison and lsn_int(gap["from"]) < lsn_int(poison)
    assert "created again" not in gap["reason"]   # the slot still held the changes


# --- bad and refused recover requests ---------------------------------------------

def test_bad_recover_bodies_are_400_and_recover_while_running_is_409(server, db, target_db):
    Writer.create_tables(db, rows=10)
    cdc = spec_for(db, target_db.url, name="changes", type="cdc")
    cdc["source"]["slot"] = "penstock_changes"
    assert server.call("POST", "/v1/jobs", cdc)[0] == 201
    start_streaming(server, spec_for(db, target_db.url))
    cases = [
        (None, "strategy"),
        ({}, "strategy"),
        ({"strategy": "rewind"}, "strategy"),
        ({"strategy": 3}, "strategy"),
        ({"strategy": "retry", "position": "0/1"}, "position"),
        ({"strategy": "skip", "position": 5}, "position"),
        ({"strategy": "skip", "position": "0/1 2"}, "position"),
        ({"strategy": "skip", "tables": ["public.w_items"]}, "tables"),
        ({"strategy": "resync", "tables": []}, "tables"),
        ({"strategy": "resync", "tables": ["w_items"]}, "tables"),
        ({"strategy": "resync", "tables": ["public.*"]}, "tables"),
        ({"strategy": "resync", "tables": ["public.a", "public.a"]}, "tables"),
        ({"strategy": "retry", "force": True}, "force"),
    ]
    for body, field in cases:
        status, reply = server.call("POST", "/v1/jobs/orders/recover", body)
        assert status == 400, (body, reply)
        assert reply["error"]["field"] == field, (body, reply)
        assert field in reply["error"]["message"]
    status, reply = server.call("POST", "/v1/jobs/orders/recover", raw=b"{nope")
    assert status == 400 and reply["error"]["code"] == "invalid_json"
    # a cdc job copies no snapshot
    status, reply = server.call("POST", "/v1/jobs/changes/recover", {"strategy": "resync"})
    assert status == 400 and reply["error"]["field"] == "strategy", reply
    # a good body in a state that does not allow recover: 409, nothing changes
    for strategy in ("retry", "skip", "resync"):
        status, reply = server.call("POST", "/v1/jobs/orders/recover", {"strategy": strategy})
        assert status == 409, reply
        assert reply["error"]["state"] == "running" and "recover" not in reply["error"]["allowed_actions"]
    status, reply = server.call("POST", "/v1/jobs/changes/recover", {"strategy": "retry"})
    assert status == 409 and reply["error"]["state"] == "created"
    p = server.cli("recover", "orders", "--strategy", "retry")
    assert p.returncode == 5, (p.returncode, p.stderr)
    p = server.cli("recover", "orders")
    assert p.returncode == 2 and "strategy" in p.stderr, (p.returncode, p.stderr)
    assert server.job("orders")["state"] == "running"
    assert server.call("GET", "/v1/jobs/nope/recover")[0] == 405
    assert server.call("POST", "/v1/jobs/nope/recover", {"strategy": "retry"})[0] == 404
    assert [e for e in server.call("GET", "/v1/jobs/orders/events")[1]["events"]
            if "recover" in (e["reason"] or "")] == []


# --- degraded health -------------------------------------------------------------

def test_source_lost_with_changes_queued_is_degraded_then_fails_and_retries(
        own_cluster, own_server, target_db):
    """The applier is held by a lock on the target while the reader queues
    changes; then the source stops. The job stays running with health
    degraded, applies what it had read once the lock goes, is
    degraded_log_fully_read, fails and retries, and runs again when the
    source is back."""
    server = own_server
    src = own_cluster.new_database()
    Writer.create_tables(src, rows=50)
    start_streaming(server, spec_for(src, target_db.url, retry=FAST_RETRY))
    lock = target_db.cluster.connect(target_db.name)
    lock.autocommit = False
    try:
        with lock.cursor() as cur:
            cur.execute("LOCK TABLE w_items IN ACCESS EXCLUSIVE MODE")
        for i in range(40):
            src.execute("INSERT INTO w_items VALUES (%s, %s, 'queued')", (8000 + i, i))
        end = src.value("SELECT pg_current_wal_insert_lsn()::text")

        def read_everything():
            job = server.job("orders")
            if job["positions"]["read"] and lsn_int(job["positions"]["read"]) >= lsn_int(end):
                return True
            # the read position is published at most 4 times a second, at a
            # commit: one more small transaction carries it
            src.execute("INSERT INTO w_history VALUES (0, 'nudge')")
            return False
        wait_for(read_everything, 60, interval=0.3, what="the reader to read the inserts")
        applied = server.job("orders")["positions"]["applied"]
        # immediate: a fast shutdown would wait for the job to confirm what its
        # walsender sent, which the lock holds back
        stop_pg(own_cluster, "immediate")
        job = wait_for(lambda: (lambda j: j if j["health"] == "degraded" else None)(
            server.job("orders")), 60, what="health degraded")
        assert job["state"] == "running", job
        assert job["positions"]["applied"] == applied   # still held by the lock
        shown = server.cli("show", "orders", check=0).stdout
        assert "health degraded" in shown, shown
    finally:
        lock.rollback()
        lock.close()
    job = server.wait_state("orders", "failed", timeout=60)
    assert job["health"] == "degraded_log_fully_read", job
    # what was read before the source went away is in the target while it is still down
    assert target_db.value("SELECT count(*) FROM w_items WHERE id BETWEEN 8000 AND 8039") == 40
    assert lsn_int(job["positions"]["applied"]) >= lsn_int(end)
    assert job["cdc_state"] == "TFEND"
    events = server.call("GET", "/v1/jobs/orders/events")[1]["events"]
    kinds = [(e["kind"], e["to"]) for e in events]
    i = kinds.index(("health", None))
    assert "degraded:" in events[i]["reason"]
    assert "degraded_log_fully_read" in events[i + 1]["reason"]
    assert kinds[i + 2] == ("transition", "failed"), kinds
    retried_while_down(server, "orders")
    assert server.job("orders")["health"] == "degraded_log_fully_read"
    start_pg(own_cluster)
    reconnect(src)
    back_to_streaming(server, "orders")
    assert server.job("orders")["health"] == "ok"
    src.execute("INSERT INTO w_items VALUES (8100, 1, 'after')")
    wait_equal(src, target_db, W_TABLES)
