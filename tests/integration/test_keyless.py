"""Tables without a primary key or replica identity (issue 14, point 4):
never a blocker where they need not be.

A snapshot job copies them with no publication check; a sync job captures
their inserts and truncates through an insert-only publication (so UPDATE
and DELETE keep working on the source) with a precheck warning naming them;
tables.keyless chooses refusing them or setting REPLICA IDENTITY FULL.
Everything runs against real servers; rows are compared with the source.
"""
import json
import subprocess

from conftest import BIN, PGBIN, wait_equal, wait_for
from test_server import server  # noqa: F401  (the server fixture)

PGBENCH = ["public.pgbench_accounts", "public.pgbench_branches", "public.pgbench_history",
           "public.pgbench_tellers"]


def pgbench(db, *args):
    subprocess.run([str(PGBIN / "pgbench"), "-h", "127.0.0.1", "-p", str(db.cluster.port),
                    "-U", "postgres", *args, db.name], check=True, capture_output=True)


def publications(db):
    return dict(db.execute("SELECT pubname, pubinsert AND pubupdate AND pubdelete "
                           "FROM pg_publication ORDER BY 1") or [])


def run_check(tmp_path, spec):
    path = tmp_path / "check.json"
    path.write_text(json.dumps(spec))
    p = subprocess.run([BIN, "check", "--json", str(path)], capture_output=True, text=True,
                       timeout=120)
    assert p.returncode in (0, 4), p.stderr
    return p.returncode, {it["id"]: it for it in json.loads(p.stdout)["items"]}


def test_pgbench_snapshot_job_with_default_settings(db, target_db, make_job):
    """pgbench_history has no key: a snapshot job copies it and asks for no
    publication or replica identity."""
    pgbench(db, "-i", "-s", "1", "-q")
    pgbench(db, "-t", "30", "-c", "2")          # history gets rows
    assert db.value("SELECT count(*) FROM pgbench_history") == 60
    p = make_job("bench", target=target_db.url, type="snapshot")
    # its precheck skips the replica identity items: it reads no change of them
    rc, items = run_check(p.workdir, dict(p.spec))
    assert rc == 0, items
    assert items["source.replica_identity"]["result"] == "skipped"
    assert items["source.keyless"]["result"] == "skipped"
    rc, _, err = p.run_to_exit(timeout=180)
    assert rc == 0, err
    assert "snapshot job bench complete" in err
    wait_equal(db, target_db, PGBENCH, timeout=5)
    # the job asked nothing of the keyless table and left nothing behind
    assert db.value("SELECT relreplident FROM pg_class WHERE oid = 'pgbench_history'::regclass") == "d"
    assert publications(db) == {}
    assert db.value("SELECT count(*) FROM pg_replication_slots "
                    "WHERE database = current_database()") == 0


def test_pgbench_sync_job_with_default_settings(db, target_db, make_job):
    """The sync job starts with pgbench_history captured insert-only; pgbench
    keeps running on the source (its UPDATEs never hit the keyless table)
    and every table ends equal."""
    pgbench(db, "-i", "-s", "1", "-q")
    pgbench(db, "-t", "20")
    p = make_job("bench", target=target_db.url)
    rc, items = run_check(p.workdir, dict(p.spec))
    assert rc == 0, items
    keyless = items["source.keyless"]
    assert keyless["level"] == "warning" and keyless["result"] == "failed"
    assert "public.pgbench_history" in keyless["message"]
    assert "public.pgbench_accounts" not in keyless["message"]
    assert "updates and deletes" in keyless["message"].lower() or \
        "UPDATE and DELETE" in keyless["message"]
    assert keyless["fix"].startswith('ALTER TABLE "public"."pgbench_history" REPLICA IDENTITY FULL;')
    assert items["source.replica_identity"]["result"] == "passed"

    p.start()
    p.wait_streaming(db, timeout=120)
    assert "captured insert-only" in p.stderr()
    # the keyless table is only in the insert-only publication
    pubs = publications(db)
    assert pubs == {"penstock_bench": True, "penstock_bench_inserts": False}, pubs
    assert db.value("SELECT array_agg(tablename::text ORDER BY tablename) FROM pg_publication_tables "
                    "WHERE pubname = 'penstock_bench_inserts'") == ["pgbench_history"]
    # pgbench truncates pgbench_history before it runs: the truncate comes too
    pgbench(db, "-t", "200", "-c", "2")
    wait_equal(db, target_db, PGBENCH, timeout=120)
    assert target_db.value("SELECT count(*) FROM pgbench_history") == 400
    assert p.stop() == 0


def test_keyless_updates_work_on_the_source_and_are_not_captured(db, target_db, make_job):
    db.execute("CREATE TABLE events (at int, what text)")
    db.execute("CREATE TABLE keyed (id int PRIMARY KEY, v text)")
    db.execute("INSERT INTO events VALUES (1, 'one'), (2, 'two')")
    p = make_job("ev", target=target_db.url)
    p.start()
    p.wait_streaming(db)
    db.execute("INSERT INTO events VALUES (3, 'three')")
    db.execute("INSERT INTO keyed VALUES (1, 'a')")
    wait_equal(db, target_db, ["public.events", "public.keyed"])
    # UPDATE and DELETE still work on the source: the table is not published for them
    db.execute("UPDATE events SET what = 'changed' WHERE at = 1")
    db.execute("DELETE FROM events WHERE at = 2")
    db.execute("INSERT INTO keyed VALUES (2, 'b')")   # a later change that is captured
    wait_for(lambda: target_db.value("SELECT count(*) FROM keyed") == 2, what="keyed row 2")
    assert target_db.execute("SELECT at, what FROM events ORDER BY at") == \
        [(1, "one"), (2, "two"), (3, "three")]
    # truncates are captured
    db.execute("TRUNCATE events")
    db.execute("INSERT INTO events VALUES (9, 'after')")
    wait_equal(db, target_db, ["public.events"])
    assert p.stop() == 0


def test_keyless_refuse_blocks_the_job_and_creates_nothing(tmp_path, db, target_db, make_job):
    db.execute("CREATE TABLE loose (a int)")
    db.execute("CREATE TABLE keyed (id int PRIMARY KEY)")
    p = make_job("ref", target=target_db.url, tables={"keyless": "refuse"})
    rc, _, err = p.run_to_exit()
    assert rc != 0
    assert "public.loose" in err and "tables.keyless" in err and "REPLICA IDENTITY FULL" in err
    assert publications(db) == {}
    assert db.value("SELECT count(*) FROM pg_replication_slots "
                    "WHERE database = current_database()") == 0
    rc, items = run_check(tmp_path, dict(p.spec))
    assert rc == 4
    assert items["source.replica_identity"]["result"] == "failed"
    assert items["source.keyless"]["result"] == "skipped"


def test_keyless_replica_identity_full_captures_every_change(db, target_db, make_job):
    db.execute("CREATE TABLE loose (a int, b text)")
    db.execute("INSERT INTO loose VALUES (1, 'x'), (1, 'x'), (2, 'y')")
    p = make_job("full", target=target_db.url, tables={"keyless": "replica_identity_full"})
    rc, items = run_check(p.workdir, dict(p.spec))
    assert rc == 0
    assert items["source.keyless"]["result"] == "failed"        # a warning: it will change
    assert "REPLICA IDENTITY FULL" in items["source.keyless"]["message"]
    assert db.value("SELECT relreplident FROM pg_class WHERE oid = 'loose'::regclass") == "d"
    p.start()
    p.wait_streaming(db)
    assert db.value("SELECT relreplident FROM pg_class WHERE oid = 'loose'::regclass") == "f"
    assert publications(db)["penstock_full"] is True
    db.execute("UPDATE loose SET b = 'z' WHERE a = 2")
    db.execute("DELETE FROM loose WHERE ctid = (SELECT ctid FROM loose WHERE a = 1 LIMIT 1)")
    wait_equal(db, target_db, ["public.loose"])
    assert target_db.execute("SELECT a, b FROM loose ORDER BY a") == [(1, "x"), (2, "z")]
    assert p.stop() == 0


def test_job_show_says_which_tables_are_insert_only(server, db, target_db):
    from test_server import spec_for
    db.execute("CREATE TABLE events (at int, what text)")
    db.execute("CREATE TABLE keyed (id int PRIMARY KEY)")
    db.execute("INSERT INTO events VALUES (1, 'one')")
    assert server.call("POST", "/v1/jobs", spec_for(db, target_db.url, name="ev"))[0] == 201
    server.call("POST", "/v1/jobs/ev/start")
    wait_for(lambda: server.job("ev").get("phase") == "streaming", 90, what="streaming")
    job = server.job("ev")
    tables = {t["name"]: t for t in job["tables"]}
    assert tables["events"]["insert_only"] is True and tables["keyed"]["insert_only"] is False
    out = server.cli("show", "ev").stdout
    line = [l for l in out.splitlines() if "public.events" in l][0]
    assert "insert-only: updates and deletes not captured" in line, out
    assert [l for l in out.splitlines() if "public.keyed" in l and "insert-only" in l] == []
    assert "warning     source.keyless: public.events has no primary key" in out, out
    server.call("POST", "/v1/jobs/ev/stop")
    server.wait_state("ev", "stopped")
