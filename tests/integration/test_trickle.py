"""Trickle-feed runs (issue 21): `penstock run --until caught-up` processes
the range from the checkpoint to the source's log end as it was when the run
began, and exits 0; repeated like a scheduled package under concurrent
writes, the union of the ranges is every change exactly once (transactional
targets) or at least once with the repeats flagged (JSON lines)."""
import json
import re
import signal
import sqlite3

import psycopg2

from conftest import Writer, pg_rows, wait_equal, wait_for, lsn_int

TABLES = ["public.w_items", "public.w_history"]
RANGE = re.compile(r"processed the range \((\S*), (\S+)\]: (\d+) transactions, (\d+) changes")


def run_range(p, until="caught-up", timeout=120):
    rc, _, err = p.run_to_exit(timeout=timeout, args=("--until", until))
    assert rc == 0, err
    m = RANGE.search(err)
    assert m, err
    return m.group(1), m.group(2), int(m.group(4)), err   # from, to, changes, log


def test_scheduled_runs_under_writes_apply_every_change_exactly_once(db, target_db, make_job):
    Writer.create_tables(db)
    p = make_job("feed", target=target_db.url)
    writer = Writer(db)
    writer.start()
    ranges = []
    try:
        # the first run loads the tables, then processes up to the log end
        for _ in range(4):
            start = writer.txns
            frm, to, _, err = run_range(p)
            ranges.append((frm, to))
            wait_for(lambda: writer.txns > start + 20, 60, what="more source transactions")
    finally:
        writer.stop()
    # the writer has stopped: one more run takes the rest
    frm, to, _, _ = run_range(p)
    ranges.append((frm, to))
    # each range begins where the last one ended, and the checkpoint holds it
    for (_, a_to), (b_from, _) in zip(ranges, ranges[1:]):
        assert a_to == b_from, ranges
    ck = target_db.value("SELECT body FROM penstock.checkpoint WHERE job = 'feed'")
    ck = json.loads(ck)
    assert ck["cdc_state"] == "TFEND" and ck["position"] == to
    assert ck["range"] == {"from": frm, "to": to}
    # nothing lost, nothing twice: w_history has no key, a repeat would show
    wait_equal(db, target_db, TABLES, timeout=5)


def test_a_run_with_nothing_to_do_exits_at_once_and_changes_nothing(db, target_db, make_job):
    Writer.create_tables(db)
    p = make_job("idle", target=target_db.url, type="cdc")
    frm, to, changes, _ = run_range(p)
    frm2, to2, changes2, err = run_range(p)
    assert frm2 == to and changes2 == 0, err
    assert lsn_int(to2) > lsn_int(to)
    # a position at or before the checkpoint: nothing to process, exit 0
    rc, _, err = p.run_to_exit(args=("--until", frm))
    assert rc == 0 and "nothing to process" in err, err


def test_until_a_position_stops_exactly_there(db, target_db, make_job):
    db.execute("CREATE TABLE t (id int PRIMARY KEY)")
    p = make_job("pos", target=target_db.url)
    run_range(p)                                   # the slot exists from here on
    marks = []
    for i in range(1, 7):
        db.execute("INSERT INTO t VALUES (%s)", (i,))
        marks.append(db.value("SELECT pg_current_wal_insert_lsn()::text"))
    frm, to, changes, err = run_range(p, until=marks[2])   # after the third insert
    assert to == marks[2] and changes == 3, err
    assert [r[0] for r in target_db.execute("SELECT id FROM t ORDER BY id")] == [1, 2, 3]
    frm, to, changes, err = run_range(p)
    assert frm == marks[2] and changes == 3, err
    assert [r[0] for r in target_db.execute("SELECT id FROM t ORDER BY id")] == list(range(1, 7))


def test_until_refuses_what_it_cannot_do(db, target_db, make_job):
    db.execute("CREATE TABLE t (id int PRIMARY KEY)")
    p = make_job("bad", target=target_db.url, type="cdc")
    rc, _, err = p.run_to_exit(args=("--until", "yesterday"))
    assert rc == 2 and "is not a PostgreSQL log position" in err, err
    rc, _, err = p.run_to_exit(args=("--until", "FFFFFFF/0"))
    assert rc == 2 and "past the end of the source's log" in err, err
    s = make_job("snap", target=target_db.url, type="snapshot")
    rc, _, err = s.run_to_exit(args=("--until", "caught-up"))
    assert rc == 2 and "snapshot job ends by itself" in err, err


def test_into_sqlite_scheduled_runs_equal_the_source(db, tmp_path, make_job):
    Writer.create_tables(db)
    path = tmp_path / "feed.db"
    p = make_job("lite", target=f"sqlite://{path}")
    writer = Writer(db, seed=3)
    writer.start()
    try:
        for _ in range(3):
            start = writer.txns
            run_range(p)
            wait_for(lambda: writer.txns > start + 20, 60, what="more source transactions")
    finally:
        writer.stop()
    run_range(p)
    wait_equal(db, None, TABLES, timeout=5, sqlite_path=str(path))


def test_a_run_killed_mid_range_is_redone_with_the_reprocessing_flag(db, tmp_path, make_penstock):
    """JSON lines are at least once: a run killed in its range leaves the
    marker TFSTART; the next run redoes the rest of the range and flags what
    may repeat. The union holds every change."""
    db.execute("CREATE TABLE t (id int PRIMARY KEY, v text)")
    p = make_penstock("redo")
    run_range(p)                                          # the slot, an empty first range
    for i in range(200):
        db.execute("INSERT INTO t SELECT g, repeat('x', 2000) FROM generate_series(%s, %s) g",
                   (i * 100 + 1, i * 100 + 100))
    for i in range(1, 51):
        db.execute("UPDATE t SET v = %s WHERE id = %s", (f"u{i}", i))
    # the run dies in its range, as a power cut would, when its second batch
    # (of about 16 MiB) is written but not yet checkpointed
    p.start(extra_env={"PENSTOCK_FAULT": "apply.batch.before_commit:crash@2"},
            args=("--until", "caught-up"))
    p.proc.wait(timeout=120)
    assert p.proc.returncode == -signal.SIGKILL, p.stderr()
    # every run checkpoints TFSTART before it writes anything: the kill left it
    assert p.checkpoint()["cdc_state"] == "TFSTART"
    frm, to, changes, err = run_range(p)
    assert 'marked "reprocessing": true' in err, err
    events = p.events()
    inserts = {e["after"]["id"] for e in events if e["op"] == "c"}
    assert inserts == set(range(1, 20001))
    flagged = [e for e in events if e.get("reprocessing")]
    assert flagged, "the redone range carries the reprocessing flag"
    updates = {(e["after"]["id"], e["after"]["v"]) for e in events if e["op"] == "u"}
    assert updates == {(i, f"u{i}") for i in range(1, 51)}
    assert p.checkpoint()["cdc_state"] == "TFEND"
