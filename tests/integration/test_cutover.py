"""A migration's cutover through the real server, against real PostgreSQL
(and SQLite): ready_to_complete follows the lag, `complete` fences at the
source's current position, applies up to it, syncs sequences, optionally
compares, and leaves nothing behind on the source.
"""
import sqlite3

from conftest import wait_equal, wait_for
from test_server import server, slot_exists, spec_for, transition_events  # noqa: F401

TABLES = ["public.orders", "public.events", "public.plain"]


def create_tables(db):
    db.execute("CREATE TABLE orders (id serial PRIMARY KEY, note text)")
    db.execute("CREATE TABLE events (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, kind text)")
    db.execute("CREATE TABLE plain (k int PRIMARY KEY, v int)")
    db.execute("INSERT INTO orders (note) SELECT 'o' || g FROM generate_series(1, 50) g")
    db.execute("INSERT INTO events (kind) SELECT 'e' || g FROM generate_series(1, 30) g")
    db.execute("INSERT INTO plain SELECT g, g FROM generate_series(1, 10) g")


def publication_exists(db, name):
    return db.value("SELECT count(*) FROM pg_publication WHERE pubname = %s", (name,)) == 1


def test_a_migration_completes_with_sequences_synced_and_nothing_left_behind(server, db, target_db):
    create_tables(db)
    spec = spec_for(db, target_db.url, name="move", type="migration", complete={"max_lag_ms": 2000})
    assert server.call("POST", "/v1/jobs", spec)[0] == 201
    server.call("POST", "/v1/jobs/move/start")
    job = server.wait_state("move", "ready_to_complete")
    assert "complete" in job["allowed_actions"]
    # the application keeps writing until the cutover: the sequences move on
    db.execute("INSERT INTO orders (note) SELECT 'late' || g FROM generate_series(1, 20) g")
    db.execute("INSERT INTO events (kind) VALUES ('late')")
    db.execute("UPDATE plain SET v = v + 100 WHERE k <= 5")

    p = server.cli("complete", "move", "--compare", "--wait", check=0)
    assert "job move is completed" in p.stdout, (p.stdout, p.stderr)
    job = server.job("move")
    assert job["state"] == "completed" and job["last_error"] is None
    # every change before the fence is in the target
    wait_equal(db, target_db, TABLES, timeout=5)
    # nothing is left behind: slot, publication, checkpoint
    assert not slot_exists(db, "penstock_move")
    assert not publication_exists(db, "penstock_move")
    assert target_db.value("SELECT count(*) FROM penstock.checkpoint") == 0
    # sequences: the target continues where the source stopped, no collision
    for table, insert in [("orders", "INSERT INTO orders (note) VALUES ('after') RETURNING id"),
                          ("events", "INSERT INTO events (kind) VALUES ('after') RETURNING id")]:
        seq = db.value("SELECT pg_get_serial_sequence(%s, 'id')", (table,))
        source_last = db.value(f"SELECT last_value FROM {seq}")
        assert target_db.value(f"SELECT last_value FROM {seq}") == source_last
        new_id = target_db.value(insert)
        assert new_id == source_last + 1
        assert new_id > db.value(f"SELECT max(id) FROM {table}")
    # the history: ready, completing, completed, with what was done
    path = [e["to"] for e in transition_events(server, "move")]
    assert path[-3:] == ["ready_to_complete", "completing", "completed"], path
    done = transition_events(server, "move")[-1]["reason"]
    assert "sequences: 2 synced" in done and "full compare: equal" in done, done
    assert "dropped slot penstock_move and publication penstock_move" in done
    assert "removed the checkpoint" in done
    compares = server.call("GET", "/v1/jobs/move/compares")[1]["compares"]
    assert [c["result"]["equal"] for c in compares] == [True]
    p = server.cli("show", "move", check=0)
    assert "state       completed" in p.stdout, p.stdout
    # a completed job holds nothing: delete releases nothing more
    status, reply = server.call("DELETE", "/v1/jobs/move")
    assert status == 200 and "held no slot" in reply["removed"], reply


def test_ready_to_complete_follows_the_lag_and_complete_is_refused_while_it_lags(
        server, db, target_db):
    create_tables(db)
    spec = spec_for(db, target_db.url, name="lagging", type="migration",
                    complete={"max_lag_ms": 1500}, tables={"include": ["public.orders"]})
    server.call("POST", "/v1/jobs", spec)
    server.call("POST", "/v1/jobs/lagging/start")
    server.wait_state("lagging", "ready_to_complete")
    # slow the apply down live and give it a backlog: the lag grows over the
    # limit and the job is running again, not ready
    status, _ = server.call("PATCH", "/v1/jobs/lagging", {"limits": {"rows_per_sec": 20}})
    assert status == 200
    for i in range(30):
        db.execute("INSERT INTO orders (note) SELECT 'slow' FROM generate_series(1, 10)")
    server.wait_state("lagging", "running", timeout=60)
    status, reply = server.call("POST", "/v1/jobs/lagging/complete")
    assert status == 409 and "complete.max_lag_ms" in reply["error"]["message"], reply
    assert server.job("lagging")["state"] == "running"
    assert slot_exists(db, "penstock_lagging")
    # lifted: it catches up and is ready again; now it completes
    server.call("PATCH", "/v1/jobs/lagging", {"limits": {"rows_per_sec": 0}})
    server.wait_state("lagging", "ready_to_complete", timeout=60)
    status, job = server.call("POST", "/v1/jobs/lagging/complete", {"compare": "count"})
    assert status == 202 and job["state"] == "completing", job
    server.wait_state("lagging", "completed", timeout=60)
    wait_equal(db, target_db, ["public.orders"], timeout=5)
    assert not slot_exists(db, "penstock_lagging")
    # bad bodies name the field
    status, reply = server.call("POST", "/v1/jobs/lagging/complete", {"compare": "fast"})
    assert status == 400 and reply["error"]["field"] == "compare"


def test_only_a_migration_completes(server, db, target_db):
    create_tables(db)
    server.call("POST", "/v1/jobs", spec_for(db, target_db.url, name="syncing"))
    server.call("POST", "/v1/jobs/syncing/start")
    wait_for(lambda: server.job("syncing")["phase"] == "streaming", 90, what="streaming")
    job = server.job("syncing")
    assert "complete" not in job["allowed_actions"]
    status, reply = server.call("POST", "/v1/jobs/syncing/complete")
    assert status == 409 and "only a migration job completes" in reply["error"]["message"], reply
    assert server.job("syncing")["state"] == "running"
    p = server.cli("complete", "syncing", check=5)
    assert "only a migration" in p.stderr
    # a spec may not ask a sync job for a cutover either
    status, reply = server.call("PATCH", "/v1/jobs/syncing", {"complete": {"max_lag_ms": 10}})
    assert status == 400 and reply["error"]["field"] == "complete", reply


def test_a_migration_to_sqlite_completes_and_says_sequences_do_not_apply(
        server, db, tmp_path):
    create_tables(db)
    path = tmp_path / "target.db"
    spec = spec_for(db, f"sqlite://{path}", name="tolite", type="migration")
    server.call("POST", "/v1/jobs", spec)
    server.call("POST", "/v1/jobs/tolite/start")
    server.wait_state("tolite", "ready_to_complete")
    server.cli("complete", "tolite", "--wait", check=0)
    done = transition_events(server, "tolite")[-1]
    assert done["to"] == "completed", done
    assert "sequences: not applicable (a sqlite target has no sequences" in done["reason"]
    assert not slot_exists(db, "penstock_tolite")
    assert not publication_exists(db, "penstock_tolite")
    c = sqlite3.connect(path)
    try:
        assert c.execute("SELECT count(*) FROM _penstock_checkpoint").fetchone()[0] == 0
        assert c.execute("SELECT count(*) FROM orders").fetchone()[0] == 50
    finally:
        c.close()
