"""Modifying a running job (PATCH /v1/jobs/{id}) through the real server,
against real PostgreSQL: rate limits that change live, tables added (with a
watermarked backfill under concurrent writes) and removed, and the
identity changes that are refused while the job holds a checkpoint.
"""
import random
import time

from conftest import TxnWriter, Writer, wait_equal, wait_for

W_TABLES = ["public.w_items", "public.w_history"]
from test_server import server, spec_for, start_streaming, transitions  # noqa: F401


def count(database, table):
    return database.value(f"SELECT count(*) FROM {table}")


# --- rate limits --------------------------------------------------------------

def test_a_rate_limit_caps_throughput_and_lifting_it_live_lets_the_rest_through(
        server, db, target_db):
    db.execute("CREATE TABLE items (id int PRIMARY KEY, v text)")
    spec = spec_for(db, target_db.url, name="limited", tables={"include": ["public.items"]},
                    limits={"rows_per_sec": 200})
    start_streaming(server, spec)
    assert server.job("limited")["limits"] == {"rows_per_sec": 200, "bytes_per_sec": 0,
                                               "parallel": 4}

    # a backlog of n rows at 200 rows/s takes at least n/200 s (less a burst
    # of a tenth of a second's worth)
    n = 600
    started = time.monotonic()
    db.execute(f"INSERT INTO items SELECT g, 'a' FROM generate_series(1, {n}) g")
    wait_for(lambda: count(target_db, "items") == n, 60, what="the first backlog")
    elapsed = time.monotonic() - started
    assert elapsed >= (n - 21) / 200, elapsed

    # a much bigger backlog: under the limit it would take 100 s; lifted
    # live, without a restart, the rest arrives in far less
    more = 20000
    for lo in range(n + 1, n + more + 1, 100):   # in transactions of 100 rows
        db.execute(f"INSERT INTO items SELECT g, 'b' FROM generate_series({lo}, {lo + 99}) g")
    wait_for(lambda: count(target_db, "items") > n + 100, 30, what="the limited apply to begin")
    path_before = transitions(server, "limited")
    status, job = server.call("PATCH", "/v1/jobs/limited", {"limits": {"rows_per_sec": 0}})
    assert status == 200, job
    assert job["limits"]["rows_per_sec"] == 0 and job["state"] == "running"
    # the deadline is what proves the lift: 60 s, well under the 100 s the
    # limit would need for the rest
    wait_for(lambda: count(target_db, "items") == n + more, 60, what="the rest of the backlog")
    assert count(target_db, "items") == count(db, "items")
    # the same run went on: no restart, and the event says what changed live
    assert transitions(server, "limited") == path_before
    events = server.call("GET", "/v1/jobs/limited/events")[1]["events"]
    assert any(e["kind"] == "modify" and "limits.rows_per_sec 200 -> 0" in e["reason"]
               for e in events), events
    p = server.cli("show", "limited", check=0)
    assert "limits      unlimited changes/s" in p.stdout, p.stdout


def test_a_byte_limit_and_a_limit_set_live_on_an_unlimited_job(server, db, target_db):
    db.execute("CREATE TABLE blobs (id int PRIMARY KEY, pad text)")
    spec = spec_for(db, target_db.url, name="bytes", tables={"include": ["public.blobs"]})
    start_streaming(server, spec)
    status, job = server.call("PATCH", "/v1/jobs/bytes", {"limits": {"bytes_per_sec": 100000}})
    assert status == 200 and job["limits"]["bytes_per_sec"] == 100000
    # 40 rows of 10 kB: about 400 kB of changes at 100 kB/s
    started = time.monotonic()
    db.execute("INSERT INTO blobs SELECT g, repeat('x', 10000) FROM generate_series(1, 40) g")
    wait_for(lambda: count(target_db, "blobs") == 40, 60, what="the rows")
    assert time.monotonic() - started >= 3.0
    wait_equal(db, target_db, ["public.blobs"])


# --- what may not change --------------------------------------------------------

def test_identity_changes_are_refused_with_the_field_and_bad_limits_are_400(
        server, db, target_db, cluster):
    db.execute("CREATE TABLE items (id int PRIMARY KEY, v text)")
    spec = spec_for(db, target_db.url, name="ident", tables={"include": ["public.items"]})
    start_streaming(server, spec)
    other = cluster.new_database()
    try:
        for patch, field in [({"source": {"url": other.url}}, "source.url"),
                             ({"target": {"url": other.url}}, "target.url"),
                             ({"source": {"slot": "another_slot"}}, "source.slot"),
                             ({"type": "cdc"}, "type")]:
            status, reply = server.call("PATCH", "/v1/jobs/ident", patch)
            assert status == 409, (patch, reply)
            assert reply["error"]["field"] == field and field in reply["error"]["message"]
        for patch, field in [({"limits": {"rows_per_sec": -5}}, "limits.rows_per_sec"),
                             ({"limits": {"bytes_per_sec": "fast"}}, "limits.bytes_per_sec"),
                             ({"limits": {"rows": 5}}, "limits.rows"),
                             ({"snapshot": {"parallel": 0}}, "snapshot.parallel")]:
            status, reply = server.call("PATCH", "/v1/jobs/ident", patch)
            assert status == 400, (patch, reply)
            assert reply["error"]["field"] == field, reply
        # nothing of that changed the job, which still runs
        job = server.job("ident")
        assert job["state"] == "running" and job["spec"] == server.job("ident")["spec"]
        assert job["spec"]["source"]["url"] == db.url and "limits" not in job["spec"]
        # the same source and target reached another way (connection
        # parameters) is the same identity: accepted, for the next start
        url = db.url + "?application_name=penstock_test"
        status, job = server.call("PATCH", "/v1/jobs/ident", {"source": {"url": url}})
        assert status == 200 and job["spec"]["source"]["url"] == url, job
        db.execute("INSERT INTO items VALUES (1, 'still streaming')")
        wait_equal(db, target_db, ["public.items"])
    finally:
        other.conn.close()


# --- removing a table -------------------------------------------------------------

class PairWriter(TxnWriter):
    """Inserts id = 1, 2, 3, ... into every table of `tables` in one
    transaction per id, until stopped."""

    def __init__(self, database, tables):
        super().__init__(database)
        self.tables = tables

    def write(self, cur):
        for t in self.tables:
            cur.execute(f"INSERT INTO {t} VALUES (%s, %s)", (self.txns + 1, self.txns + 1))


def ids(database, table):
    return [r[0] for r in database.execute(f"SELECT id FROM {table} ORDER BY id")]


def test_removing_a_table_stops_its_changes_at_a_clear_position_and_leaves_its_data(
        server, db, target_db):
    db.execute("CREATE TABLE keep (id int PRIMARY KEY, v int)")
    db.execute("CREATE TABLE gone (id int PRIMARY KEY, v int)")
    spec = spec_for(db, target_db.url, name="shrink", tables={"include": ["public.*"]})
    start_streaming(server, spec)
    writer = PairWriter(db, ["keep", "gone"])
    writer.start()
    try:
        wait_for(lambda: writer.txns > 50 and count(target_db, "gone") > 20, 60, what="writes")
        path_before = transitions(server, "shrink")
        status, job = server.call("PATCH", "/v1/jobs/shrink", {"tables": {"exclude": ["public.gone"]}})
        assert status == 200 and job["state"] == "running", job
        wait_for(lambda: any(e["kind"] == "tables" and "removed" in e["reason"]
                             for e in server.call("GET", "/v1/jobs/shrink/events")[1]["events"]),
                 60, what="the removal to take effect")
        done = writer.txns
        wait_for(lambda: writer.txns > done + 50, 60, what="writes after the removal")
    finally:
        writer.stop()
    # the kept table goes on; the removed one stopped at one position: the
    # target holds exactly the ids up to it, none missing, none after it
    wait_equal(db, target_db, ["public.keep"])
    kept = ids(target_db, "gone")
    assert kept == list(range(1, len(kept) + 1)), kept[-10:]
    assert 20 < len(kept) < count(db, "gone")
    event = [e for e in server.call("GET", "/v1/jobs/shrink/events")[1]["events"]
             if e["kind"] == "tables"][-1]
    assert "public.gone removed at" in event["reason"] and "target data left as it is" in event["reason"]
    # the same run went on, without a restart
    assert transitions(server, "shrink") == path_before
    # the source no longer publishes it
    assert db.value("SELECT count(*) FROM pg_publication_tables WHERE pubname = 'penstock_shrink' "
                    "AND tablename = 'gone'") == 0
    # changes to it after a restart are not applied either; the checkpoint
    # follows the tables in force, so the job resumes
    server.call("POST", "/v1/jobs/shrink/pause")
    server.wait_state("shrink", "paused")
    db.execute("DELETE FROM gone")
    db.execute("INSERT INTO keep VALUES (-1, -1)")
    server.call("POST", "/v1/jobs/shrink/resume")
    server.wait_state("shrink", "running")
    wait_equal(db, target_db, ["public.keep"])
    assert ids(target_db, "gone") == kept


# --- adding a table ----------------------------------------------------------------

class ExtraWriter(TxnWriter):
    """Random inserts, updates, deletes and key changes on table extra
    (id int PRIMARY KEY, v int, note text) until stopped."""

    def __init__(self, database, seed=7):
        super().__init__(database)
        self.rand = random.Random(seed)

    def write(self, cur):
        k = self.rand.randrange(1, 6000)
        op = self.rand.random()
        if op < 0.4:
            cur.execute("UPDATE extra SET v = v + 1, note = 'u' WHERE id = %s", (k,))
        elif op < 0.6:
            cur.execute("INSERT INTO extra VALUES (%s, 0, 'i') "
                        "ON CONFLICT (id) DO UPDATE SET v = extra.v + 10", (k,))
        elif op < 0.8:
            cur.execute("DELETE FROM extra WHERE id = %s", (k,))
        elif op < 0.9:   # the key moves above the seeded range
            cur.execute("UPDATE extra SET id = %s WHERE id = %s", (100000 + self.txns, k))
        else:            # several rows in one transaction
            cur.execute("UPDATE extra SET v = v - 1 WHERE id BETWEEN %s AND %s", (k, k + 20))


def tables_events(server, name):
    return [e["reason"] for e in server.call("GET", f"/v1/jobs/{name}/events")[1]["events"]
            if e["kind"] == "tables"]


def test_adding_a_table_under_concurrent_writes_backfills_it_while_the_others_stream(
        server, db, target_db):
    Writer.create_tables(db, rows=300)
    db.execute("CREATE TABLE extra (id int PRIMARY KEY, v int NOT NULL, note text)")
    db.execute("INSERT INTO extra SELECT g, g, 'seed' FROM generate_series(1, 5000) g")
    spec = spec_for(db, target_db.url, name="grow", tables={"include": ["public.w_*"]})
    start_streaming(server, spec)
    assert target_db.value("SELECT to_regclass('public.extra')") is None
    writer, extra = Writer(db), ExtraWriter(db)
    writer.start()
    extra.start()
    try:
        wait_for(lambda: writer.txns > 30 and extra.txns > 30, 60, what="writes")
        path_before = transitions(server, "grow")
        status, job = server.call("PATCH", "/v1/jobs/grow",
                                  {"tables": {"include": ["public.w_*", "public.extra"]}})
        assert status == 200 and job["state"] == "running", job
        wait_for(lambda: any("backfill of public.extra done" in r
                             for r in tables_events(server, "grow")), 120,
                 what="the backfill to finish")
        done = extra.txns
        wait_for(lambda: extra.txns > done + 30, 60, what="writes after the backfill")
    finally:
        writer.stop()
        extra.stop()
    # every table equal on both sides, the added one included
    wait_equal(db, target_db, W_TABLES + ["public.extra"])
    # the others kept streaming: no restart of the run
    assert transitions(server, "grow") == path_before
    reasons = tables_events(server, "grow")
    assert any("table public.extra added at" in r for r in reasons), reasons
    # it was really copied in chunks while writes went on, and it shows
    job = server.job("grow")
    t = {f"{x['schema']}.{x['name']}": x for x in job["tables"]}
    assert t["public.extra"]["finished"] and t["public.extra"]["units_done"] >= 5, t
    assert t["public.extra"]["rows_copied"] > 0
    # the target table was created as a load creates it: with its key
    assert target_db.value("SELECT count(*) FROM pg_index WHERE indrelid = 'public.extra'::regclass "
                           "AND indisprimary") == 1


def test_a_table_added_while_paused_is_backfilled_on_resume_and_survives_a_restart(
        server, db, target_db):
    db.execute("CREATE TABLE base (id int PRIMARY KEY, v int)")
    db.execute("CREATE TABLE later (id int PRIMARY KEY, v int)")
    db.execute("INSERT INTO base SELECT g, g FROM generate_series(1, 100) g")
    db.execute("INSERT INTO later SELECT g, g FROM generate_series(1, 3500) g")
    spec = spec_for(db, target_db.url, name="paused", tables={"include": ["public.base"]},
                    limits={"rows_per_sec": 1000})
    start_streaming(server, spec)
    server.call("POST", "/v1/jobs/paused/pause")
    server.wait_state("paused", "paused")
    status, job = server.call("PATCH", "/v1/jobs/paused",
                              {"tables": {"include": ["public.base", "public.later"]}})
    assert status == 200 and job["state"] == "paused", job
    db.execute("UPDATE later SET v = -v WHERE id % 7 = 0")
    server.call("POST", "/v1/jobs/paused/resume")
    server.wait_state("paused", "running")
    # a restart in the middle of the backfill (the limit keeps it slow
    # enough) resumes it from the checkpoint, after the rows already copied
    def copied():
        t = {x["name"]: x for x in server.job("paused")["tables"]}.get("later")
        return t and not t["finished"] and t["rows_copied"] >= 1000
    wait_for(copied, 60, what="a part of the backfill")
    server.call("POST", "/v1/jobs/paused/pause")
    server.wait_state("paused", "paused")
    server.call("POST", "/v1/jobs/paused/resume")
    db.execute("DELETE FROM later WHERE id % 11 = 0")
    wait_for(lambda: any("backfill of public.later done" in r
                         for r in tables_events(server, "paused")), 120,
             what="the backfill to finish")
    wait_equal(db, target_db, ["public.base", "public.later"])
    reasons = tables_events(server, "paused")
    assert any("added while the job was not running" in r for r in reasons), reasons
    resumed = [r for r in reasons if "resuming the backfill of public.later after" in r]
    assert resumed and int(resumed[-1].split(" after ")[1].split()[0]) >= 1000, reasons


def test_the_initial_load_follows_live_limits_and_parallelism(server, db, target_db):
    db.execute("CREATE TABLE big (id int PRIMARY KEY, v text)")
    db.execute("INSERT INTO big SELECT g, md5(g::text) FROM generate_series(1, 6000) g")
    db.execute("ANALYZE big")
    spec = spec_for(db, target_db.url, name="loading", tables={"include": ["public.big"]},
                    snapshot={"parallel": 1, "chunk_rows": 1000}, limits={"rows_per_sec": 1000})

    def copiers():
        return db.value("SELECT count(*) FROM pg_stat_activity "
                        "WHERE application_name = 'penstock copy loading'")
    def copied():
        tables = server.job("loading")["tables"]
        return tables[0]["rows_copied"] if tables else 0
    assert server.call("POST", "/v1/jobs", spec)[0] == 201
    server.call("POST", "/v1/jobs/loading/start")
    wait_for(lambda: server.job("loading")["phase"] == "snapshot" and copiers() == 1, 60,
             what="the load with one worker")
    started = time.monotonic()
    # more workers, at once, for the units left
    status, job = server.call("PATCH", "/v1/jobs/loading", {"snapshot": {"parallel": 3}})
    assert status == 200 and job["limits"]["parallel"] == 3
    wait_for(lambda: copiers() >= 2, 30, what="more copy workers")
    # the rows are copied at no more than 1000 rows/s, whatever the workers
    wait_for(lambda: copied() >= 2500, 30, what="part of the load")
    assert time.monotonic() - started >= (2500 - 101) / 1000
    assert server.job("loading")["phase"] == "snapshot"
    # lifting the limit lets the rest through
    server.call("PATCH", "/v1/jobs/loading", {"limits": {"rows_per_sec": 0}})
    wait_for(lambda: server.job("loading")["phase"] == "streaming", 60, what="the load to end")
    wait_equal(db, target_db, ["public.big"])
    t = server.job("loading")["tables"][0]
    assert t["units_total"] >= 4 and t["units_done"] == t["units_total"], t
    events = server.call("GET", "/v1/jobs/loading/events")[1]["events"]
    assert any("snapshot.parallel 1 -> 3" in e["reason"] for e in events if e["kind"] == "modify")


BIG_TEXT = ("(SELECT string_agg(md5(random()::text || x::text || g::text), '') "
            "FROM generate_series(1, 200) x)")


def test_update_without_its_toasted_column_during_a_backfill(server, db, target_db):
    """pgoutput leaves an unchanged TOASTed column out of an update. During the
    backfill such an update must neither insert the row without that column
    nor fail on its NOT NULL: the row stays whole and the job running."""
    db.execute("CREATE TABLE base (id int PRIMARY KEY, v int)")
    db.execute("CREATE TABLE big (id int PRIMARY KEY, v int, doc text NOT NULL)")
    db.execute(f"INSERT INTO big SELECT g, g, {BIG_TEXT} FROM generate_series(1, 3000) g")
    assert db.value("SELECT min(pg_column_size(doc)) FROM big") > 2000   # stored out of line
    # a slow backfill (300 rows/s), so that the updates meet rows not copied yet
    spec = spec_for(db, target_db.url, name="toasty", tables={"include": ["public.base"]},
                    limits={"rows_per_sec": 300})
    start_streaming(server, spec)
    status, job = server.call("PATCH", "/v1/jobs/toasty",
                              {"tables": {"include": ["public.base", "public.big"]}})
    assert status == 200, job
    wait_for(lambda: any("table public.big added at" in r for r in tables_events(server, "toasty")),
             30, what="the table added")
    db.execute("UPDATE big SET v = -v WHERE id IN (1500, 2990)")   # doc unchanged: not sent
    db.execute("INSERT INTO base VALUES (1, 1)")

    def settled():
        if any("backfill of public.big done" in r for r in tables_events(server, "toasty")):
            return "done"
        state = server.job("toasty")["state"]
        return None if state in ("running", "ready_to_complete") else state
    assert wait_for(settled, 90, what="the backfill to end") == "done", server.job("toasty")
    wait_equal(db, target_db, ["public.big", "public.base"], timeout=60)
    assert server.job("toasty")["state"] == "running"
