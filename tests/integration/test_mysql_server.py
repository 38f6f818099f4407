"""MariaDB-source jobs run by `penstock server`: the lifecycle of seed 003 for
a binlog reader (source lost: degraded, degraded_log_fully_read, failed and
retried, back by itself), a purged binlog (failed_permanently, recover
resync), positions in `job show`, live table changes with watermarked
backfill, and a migration that completes with a fence and compare equal.
Every wait polls with a deadline.
"""
import json
import re

from conftest import pg_rows, wait_for
from test_failure import back_to_streaming, retried_while_down
from test_mysql_source import ACCT_COLS, MyWriter, fresh_db, make_acct, my_exec, wait_pg_equal
from test_server import Server, server  # noqa: F401

FAST_RETRY = {"initial_backoff_ms": 200, "max_backoff_ms": 1000}
POSITION = re.compile(r"^binlog\.\d+:\d+/\d+-\d+-\d+(,\d+-\d+-\d+)*$")


def spec(m, target, name="orders", **extra):
    s = {"name": name, "type": "sync", "source": {"url": f"mysql://root@127.0.0.1:{m.port}/"},
         "target": {"url": target}, "tables": {"include": ["d.*"]}}
    s.update(extra)
    return s


def start_streaming(server, sp, timeout=120):
    status, job = server.call("POST", "/v1/jobs", sp)
    assert status == 201, job
    assert server.call("POST", f"/v1/jobs/{sp['name']}/start")[0] == 202
    wait_for(lambda: server.job(sp["name"])["phase"] == "streaming", timeout, what="streaming")


def test_source_lost_degraded_then_failed_retried_and_back(mariadb_factory, server, target_db):
    """The applier is held by a lock on the target while the reader queues
    changes; then MariaDB dies. The job is running with health degraded,
    applies what it had read once the lock goes, is degraded_log_fully_read,
    fails and retries while MariaDB is down, and streams again by itself when
    it is back. `job show` gives positions as file:offset/GTID."""
    m = mariadb_factory()
    make_acct(m, 100)
    start_streaming(server, spec(m, target_db.url, retry=FAST_RETRY))
    wait_pg_equal(m, target_db, "acct", ACCT_COLS)
    lock = target_db.cluster.connect(target_db.name)
    lock.autocommit = False
    try:
        with lock.cursor() as cur:
            cur.execute("LOCK TABLE d.acct IN ACCESS EXCLUSIVE MODE")
        for i in range(40):
            my_exec(m, f"INSERT INTO acct VALUES ({8000 + i}, 'queued', {i})")
        end = m.execute("SHOW MASTER STATUS")[0]
        end_pos = (int(end[0].split(".")[1]), int(end[1]))

        nudges = [0]

        def read_everything():
            read = server.job("orders")["positions"]["read"]
            if read:
                f, off = read.split("/")[0].split(":")
                if (int(f.split(".")[1]), int(off)) >= end_pos:
                    return True
            # the read position is published at most 4 times a second, at a
            # commit: one more small transaction carries it
            nudges[0] += 1
            my_exec(m, f"INSERT INTO acct VALUES ({9500 + nudges[0]}, 'nudge', 0)")
            return False
        wait_for(read_everything, 60, interval=0.2, what="the reader to read the inserts")
        job = server.job("orders")
        for k in ("read", "applied", "acknowledged"):
            assert job["positions"][k] is None or POSITION.match(job["positions"][k]), job
        applied = job["positions"]["applied"]
        m.kill()
        job = wait_for(lambda: (lambda j: j if j["health"] == "degraded" else None)(
            server.job("orders")), 60, what="health degraded")
        assert job["state"] == "running", job
        assert job["positions"]["applied"] == applied
        shown = server.cli("show", "orders", check=0).stdout
        assert "health degraded" in shown, shown
    finally:
        lock.rollback()
        lock.close()
    job = server.wait_state("orders", "failed", timeout=60)
    assert job["health"] == "degraded_log_fully_read", job
    assert target_db.value("SELECT count(*) FROM d.acct WHERE id BETWEEN 8000 AND 8039") == 40
    err = job["last_error"]
    assert err["retryable"] is True and err["class"] == "connection", err
    retried_while_down(server, "orders")
    m.restart()
    back_to_streaming(server, "orders")
    assert server.job("orders")["health"] == "ok"
    my_exec(m, "INSERT INTO acct VALUES (9000, 'after', 1)")
    wait_pg_equal(m, target_db, "acct", ACCT_COLS)


def test_purged_binlog_fails_permanently_and_recover_resync_reloads(mariadb_factory, server,
                                                                   target_db):
    m = mariadb_factory()
    make_acct(m, 300)
    start_streaming(server, spec(m, target_db.url))
    wait_pg_equal(m, target_db, "acct", ACCT_COLS)
    assert server.call("POST", "/v1/jobs/orders/pause")[0] == 202
    server.wait_state("orders", "paused")
    my_exec(m, "UPDATE acct SET note = 'while paused' WHERE id <= 10")
    m.flush_binlogs()
    files = [r[0] for r in m.execute("SHOW BINARY LOGS")]

    def purged():
        m.execute(f"PURGE BINARY LOGS TO '{files[-1]}'")
        return [r[0] for r in m.execute("SHOW BINARY LOGS")] == files[-1:]
    wait_for(purged, what="the old binlogs purged")
    assert server.call("POST", "/v1/jobs/orders/resume")[0] == 202
    job = server.wait_state("orders", "failed_permanently", timeout=60)
    err = job["last_error"]
    assert err["retryable"] is False and err["class"] == "log_lost", err
    assert "was purged from the server" in err["message"] and "resync" in err["message"], err
    p = server.cli("recover", "orders", "--strategy", "resync", check=0)
    assert "recover resync" in p.stdout, p.stdout
    back_to_streaming(server, "orders")
    my_exec(m, "INSERT INTO acct VALUES (5000, 'after the resync', 1)")
    wait_pg_equal(m, target_db, "acct", ACCT_COLS)


def test_tables_added_and_removed_live_under_writes(mariadb_factory, server, target_db):
    """A table added to a running job is backfilled between watermarks while
    the others stream and writes go on; a removed table keeps its data and
    gets no change after its marker."""
    m = mariadb_factory()
    make_acct(m, 2000)
    my_exec(m, "CREATE TABLE later (id INT PRIMARY KEY, v VARCHAR(20))")
    my_exec(m, "INSERT INTO later SELECT seq, CONCAT('l', seq) FROM seq_1_to_5000")
    start_streaming(server, spec(m, target_db.url, tables={"include": ["d.acct"]}))
    w = MyWriter(m)
    w.start()
    wait_for(lambda: w.commits > 20 or w.error, what="writes")
    status, job = server.call("PATCH", "/v1/jobs/orders",
                              {"tables": {"include": ["d.acct", "d.later"]}})
    assert status == 200, job
    for i in range(50):
        my_exec(m, f"UPDATE later SET v = 'w{i}' WHERE id = {i * 97 + 1}")
    wait_for(lambda: target_db.value("SELECT to_regclass('d.later') IS NOT NULL"),
             what="d.later created in the target")
    w.stop()

    def later_equal():
        a = sorted((str(r[0]), r[1]) for r in m.execute("SELECT id, v FROM later", database="d"))
        return a == pg_rows(target_db, "d.later")
    wait_for(later_equal, 120, interval=0.5, what="d.later backfilled and equal")
    wait_pg_equal(m, target_db, "acct", ACCT_COLS)
    status, job = server.call("PATCH", "/v1/jobs/orders",
                              {"tables": {"include": ["d.acct"]}})
    assert status == 200, job
    wait_for(lambda: any(e["kind"] == "modify" for e in
                         server.call("GET", "/v1/jobs/orders/events")[1]["events"]),
             what="the modify event")
    my_exec(m, "INSERT INTO acct VALUES (777777, 'still here', 1)")
    wait_pg_equal(m, target_db, "acct", ACCT_COLS)
    my_exec(m, "INSERT INTO later VALUES (999999, 'not copied')")
    my_exec(m, "INSERT INTO acct VALUES (777778, 'still here', 2)")
    wait_pg_equal(m, target_db, "acct", ACCT_COLS)
    assert target_db.value("SELECT count(*) FROM d.later WHERE id = 999999") == 0
    assert target_db.value("SELECT count(*) FROM d.later") == 5000


def test_migration_completes_with_compare_equal_and_counters_synced(mariadb_factory, server,
                                                                   target_db):
    m = mariadb_factory()
    fresh_db(m)
    my_exec(m, "CREATE TABLE orders (id BIGINT AUTO_INCREMENT PRIMARY KEY, "
            "customer VARCHAR(40) NOT NULL DEFAULT 'anon', total DECIMAL(10,2) NOT NULL, "
            "placed DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3), note TEXT)")
    my_exec(m, "INSERT INTO orders (customer, total, note) SELECT CONCAT('c', seq), seq * 1.25, "
            "IF(seq % 3 = 0, NULL, 'n') FROM seq_1_to_3000")
    start_streaming(server, spec(m, target_db.url, name="move", type="migration",
                                 complete={"max_lag_ms": 2000}))
    my_exec(m, "INSERT INTO orders (customer, total) VALUES ('late', 9.99)")
    server.wait_state("move", "ready_to_complete")
    p = server.cli("complete", "move", "--compare", "--wait", check=0)
    assert "job move is completed" in p.stdout, (p.stdout, p.stderr)
    job = server.job("move")
    assert job["state"] == "completed" and job["last_error"] is None, job
    events = server.call("GET", "/v1/jobs/move/events")[1]["events"]
    done = " ".join(e["reason"] for e in events)
    assert "full compare: equal" in done and "sequences: 1 synced" in done, done
    # the counter continues where MariaDB's AUTO_INCREMENT stands
    nxt = m.execute("SELECT AUTO_INCREMENT FROM information_schema.TABLES WHERE "
                    "TABLE_SCHEMA = 'd' AND TABLE_NAME = 'orders'")[0][0]
    got = target_db.value("INSERT INTO d.orders (total) VALUES (1) RETURNING id")
    assert got == nxt, (got, nxt)
    cols = {r[0]: r for r in target_db.execute(
        "SELECT column_name, is_nullable, column_default FROM information_schema.columns "
        "WHERE table_schema = 'd' AND table_name = 'orders'")}
    assert cols["total"][1] == "NO" and "anon" in (cols["customer"][2] or ""), cols
    assert json.dumps(job)
