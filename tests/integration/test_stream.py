"""PostgreSQL change stream to JSON lines, end to end, against a real server."""
import json
import os
import random
import string
import threading

import pytest

from conftest import wait_for


def test_insert_update_delete_truncate(db, make_penstock):
    db.execute("CREATE TABLE items (id int PRIMARY KEY, name text, qty int)")
    p = make_penstock("crud")
    p.start()
    p.wait_streaming(db)
    db.execute("INSERT INTO items VALUES (1, 'one', 10), (2, 'two', 20)")
    db.execute("UPDATE items SET qty = 11 WHERE id = 1")
    db.execute("UPDATE items SET id = 3 WHERE id = 2")      # key change
    db.execute("DELETE FROM items WHERE id = 1")
    db.execute("TRUNCATE items")
    wait_for(lambda: len(p.events()) >= 6, what="6 events")
    assert p.stop() == 0
    ev = p.events()
    assert [e["op"] for e in ev] == ["c", "c", "u", "u", "d", "t"]
    assert ev[0]["after"] == {"id": 1, "name": "one", "qty": 10}
    assert ev[0]["before"] is None
    assert ev[1]["after"] == {"id": 2, "name": "two", "qty": 20}
    assert ev[2]["after"] == {"id": 1, "name": "one", "qty": 11}
    assert ev[2]["before"] is None                          # default identity, key unchanged
    assert ev[3]["before"] == {"id": 2}                     # old key sent when the key changes
    assert ev[3]["after"] == {"id": 3, "name": "two", "qty": 20}
    assert ev[4]["before"] == {"id": 1} and ev[4]["after"] is None
    assert ev[5]["truncate"] == {"cascade": False, "restart_identity": False}
    # Both inserts were one transaction: same txId and commit time.
    assert ev[0]["source"]["txId"] == ev[1]["source"]["txId"]
    for e in ev:
        src = e["source"]
        assert src["connector"] == "postgresql" and src["db"] == db.name
        assert src["schema"] == "public" and src["table"] == "items"
        assert isinstance(src["lsn"], int) and src["lsn"] > 0
        assert "reprocessing" not in e
    assert p.checkpoint()["cdc_state"] == "TFEND"


def test_replica_identity_full_sends_old_row(db, make_penstock):
    db.execute("CREATE TABLE notes (id int PRIMARY KEY, body text)")
    db.execute("ALTER TABLE notes REPLICA IDENTITY FULL")
    p = make_penstock("full")
    p.start()
    p.wait_streaming(db)
    db.execute("INSERT INTO notes VALUES (1, 'a')")
    db.execute("UPDATE notes SET body = 'b'")
    db.execute("DELETE FROM notes")
    wait_for(lambda: len(p.events()) >= 3, what="3 events")
    assert p.stop() == 0
    ev = p.events()
    assert ev[1]["before"] == {"id": 1, "body": "a"} and ev[1]["after"] == {"id": 1, "body": "b"}
    assert ev[2]["before"] == {"id": 1, "body": "b"}


TYPE_ZOO = """
CREATE TABLE zoo (
  id int PRIMARY KEY, i2 smallint, i8 bigint, f4 real, f8 double precision, fnan double precision,
  num numeric, b boolean, ts timestamp, tstz timestamptz, d date, t time, iv interval,
  by bytea, js json, jb jsonb, arr int[], tarr text[], u uuid, txt text, vc varchar(10),
  ch char(3), inet_ inet, nul text, money_ money, bits bit varying(8)
)"""

TYPE_ZOO_ROW = """
INSERT INTO zoo VALUES (1, -32768, 9223372036854775807, 1.5, -2.5e-05, 'NaN',
  1234567890123456789012345678901234567890.0123456789, true, '2024-02-29 23:59:59.999999',
  '2024-06-01 12:00:00+05:30', '0001-01-01', '24:00:00', '1 year 2 mons 3 days 04:05:06.789',
  '\\x00ff00'::bytea, '{"k": [1, "two", null]}', '{"b": 2, "a": 1}', '{1,NULL,3}',
  '{"a b","c\\"d",NULL}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
  E'quote " backslash \\\\ newline \\n tab \\t emoji \\U0001F600 nul-free', 'short', 'ab',
  '192.168.0.1/24', NULL, '12.34', B'1010')
"""


def test_type_zoo_round_trips_as_text(db, make_penstock):
    db.execute(TYPE_ZOO)
    p = make_penstock("zoo")
    p.start()
    p.wait_streaming(db)
    db.execute(TYPE_ZOO_ROW)
    wait_for(lambda: len(p.events()) >= 1, what="the zoo row")
    assert p.stop() == 0
    after = p.events()[0]["after"]
    cols = [r[0] for r in db.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = 'zoo'::regclass AND attnum > 0 "
        "AND NOT attisdropped ORDER BY attnum")]
    # The expected value of every column is the source's own output function's
    # text (format %s calls it; a ::text cast would trim char(n) padding).
    texts = db.execute("SELECT " + ", ".join(
        f'CASE WHEN "{c}" IS NULL THEN NULL ELSE format(\'%s\', "{c}") END' for c in cols)
        + " FROM zoo")[0]
    assert list(after.keys()) == cols
    for col, text in zip(cols, texts):
        got = after[col]
        if text is None:
            assert got is None, col
        elif col in ("id", "i2", "i8"):
            assert got == int(text), col
        elif col in ("f4", "f8"):
            assert got == float(text), col
        elif col == "b":
            assert got is (text == "t"), col
        else:
            assert got == text, col
    assert after["num"] == "1234567890123456789012345678901234567890.0123456789"
    assert after["fnan"] == "NaN"
    assert "\U0001F600" in after["txt"] and '"' in after["txt"] and "\\" in after["txt"]
    assert after["by"] == "\\x00ff00"


def test_unchanged_toast_is_not_emitted_as_a_value(db, make_penstock):
    db.execute("CREATE TABLE docs (id int PRIMARY KEY, title text, body text)")
    db.execute("ALTER TABLE docs ALTER COLUMN body SET STORAGE EXTERNAL")   # no compression
    big = "".join(random.choices(string.ascii_letters, k=200_000))
    p = make_penstock("toast")
    p.start()
    p.wait_streaming(db)
    db.execute("INSERT INTO docs VALUES (1, 'first', %s)", (big,))
    db.execute("UPDATE docs SET title = 'second' WHERE id = 1")
    wait_for(lambda: len(p.events()) >= 2, what="2 events")
    assert p.stop() == 0
    ins, upd = p.events()[:2]
    assert ins["after"]["body"] == big
    assert upd["op"] == "u"
    assert "body" not in upd["after"]
    assert upd["unchanged"] == ["body"]
    assert upd["after"] == {"id": 1, "title": "second"}


def test_column_added_mid_stream_shows_up(db, make_penstock):
    db.execute("CREATE TABLE evolve (id int PRIMARY KEY, a text)")
    p = make_penstock("evolve")
    p.start()
    p.wait_streaming(db)
    db.execute("INSERT INTO evolve VALUES (1, 'x')")
    db.execute("ALTER TABLE evolve ADD COLUMN b int DEFAULT 7")
    db.execute("INSERT INTO evolve VALUES (2, 'y', 8)")
    db.execute("UPDATE evolve SET a = 'z' WHERE id = 1")
    wait_for(lambda: len(p.events()) >= 4, what="4 events")
    assert p.stop() == 0
    ev = p.events()
    assert ev[0]["after"] == {"id": 1, "a": "x"}
    # the change itself, before the first event that has the column (issue 15)
    assert ev[1]["op"] == "s"
    assert ev[1]["schema"]["changes"] == [{"change": "added", "column": "b", "type": "integer",
                                           "fill": "7"}]
    assert ev[2]["after"] == {"id": 2, "a": "y", "b": 8}
    assert ev[3]["after"] == {"id": 1, "a": "z", "b": 7}


def test_logical_messages(db, make_penstock):
    db.execute("CREATE TABLE m (id int PRIMARY KEY)")
    p = make_penstock("msgs")
    p.start()
    p.wait_streaming(db)
    db.execute("SELECT pg_logical_emit_message(false, 'audit', 'plain')")
    db.execute("BEGIN; INSERT INTO m VALUES (1); "
               "SELECT pg_logical_emit_message(true, 'audit', '\\x0001ff'::bytea); COMMIT")
    wait_for(lambda: len(p.events()) >= 3, what="3 events")
    assert p.stop() == 0
    ev = p.events()
    assert ev[0]["op"] == "m" and ev[0]["message"] == {
        "prefix": "audit", "content": "cGxhaW4=", "transactional": False}
    assert ev[1]["op"] == "c"
    assert ev[2]["message"] == {"prefix": "audit", "content": "AAH/", "transactional": True}
    assert ev[2]["source"]["txId"] == ev[1]["source"]["txId"]


def writer(db_url_conn, table, start, stop_event, committed):
    """Inserts rows one transaction at a time until told to stop."""
    i = start
    with db_url_conn.cursor() as cur:
        while not stop_event.is_set():
            cur.execute(f"INSERT INTO {table} VALUES (%s, %s)", (i, f"row {i}"))
            committed.append(i)
            i += 1


def run_writer(cluster, db, table, start):
    conn = cluster.connect(db.name)
    stop = threading.Event()
    committed = []
    t = threading.Thread(target=writer, args=(conn, table, start, stop, committed))
    t.start()
    return stop, t, committed, conn


def test_graceful_stop_and_restart_loses_nothing(cluster, db, make_penstock):
    db.execute("CREATE TABLE feed (id int PRIMARY KEY, v text)")
    p = make_penstock("restart")
    p.start()
    p.wait_streaming(db)
    stop, t, committed, conn = run_writer(cluster, db, "feed", 1)
    wait_for(lambda: len(p.events()) >= 200, what="200 events")
    assert p.stop() == 0                       # mid-stream, writer still running
    assert p.checkpoint()["cdc_state"] == "TFEND"
    n_first = len(p.events())
    wait_for(lambda: len(committed) >= n_first + 200, what="more rows while stopped")
    p.start()
    p.wait_streaming(db)
    wait_for(lambda: len(committed) >= n_first + 400, what="more rows after restart")
    stop.set()
    t.join()
    conn.close()
    total = db.value("SELECT count(*) FROM feed")
    wait_for(lambda: len(p.events()) >= total, what="all events")
    assert p.stop() == 0
    ids = [e["after"]["id"] for e in p.events()]
    assert sorted(ids) == sorted(r[0] for r in db.execute("SELECT id FROM feed"))
    assert len(ids) == len(set(ids)), "a graceful stop must not repeat events"
    assert ids == sorted(ids), "events are in commit order"
    assert not any(e.get("reprocessing") for e in p.events())
    assert "resuming from checkpoint" in p.stderr()


@pytest.mark.parametrize("fault", [
    "kill-9",
    "source.read:crash@150",
    "apply.batch.before_commit:crash@3",
    "apply.batch.after_commit:crash@3",
])
def test_crash_then_restart_loses_nothing(cluster, db, make_penstock, fault):
    db.execute("CREATE TABLE feed (id int PRIMARY KEY, v text)")
    p = make_penstock("crash")
    env = {} if fault == "kill-9" else {"PENSTOCK_FAULT": fault}
    p.start(extra_env=env)
    p.wait_streaming(db)
    stop, t, committed, conn = run_writer(cluster, db, "feed", 1)
    if fault == "kill-9":
        wait_for(lambda: len(p.events()) >= 300, what="300 events")
        p.kill()
    else:
        p.proc.wait(timeout=60)
    assert p.proc.returncode == -9             # died without any clean-up
    assert p.checkpoint()["cdc_state"] in ("TFSTART", "TFREDO")
    p.start()
    p.wait_streaming(db)
    wait_for(lambda: len(committed) >= 600, what="rows after the restart")
    stop.set()
    t.join()
    conn.close()
    source_ids = sorted(r[0] for r in db.execute("SELECT id FROM feed"))
    wait_for(lambda: {e["after"]["id"] for e in p.events()} >= set(source_ids), what="all events")
    assert p.stop() == 0
    ev = p.events()
    ids = [e["after"]["id"] for e in ev]
    assert sorted(set(ids)) == source_ids, "nothing lost"
    seen = set()
    for e in ev:                               # a repeat is always marked
        i = e["after"]["id"]
        if i in seen:
            assert e.get("reprocessing") is True, f"row {i} repeated without the flag"
        seen.add(i)
    assert "did not stop cleanly" in p.stderr()


def test_idle_source_still_advances_the_slot(db, make_penstock):
    db.execute("CREATE TABLE watched (id int PRIMARY KEY)")
    db.execute("CREATE TABLE unwatched (id int PRIMARY KEY, pad text)")
    p = make_penstock("idle", tables={"include": ["public.watched"]})
    p.start()
    p.wait_streaming(db)
    db.execute("INSERT INTO unwatched SELECT g, repeat('x', 100) FROM generate_series(1, 5000) g")
    target = db.value("SELECT pg_current_wal_insert_lsn()")

    def confirmed_past():
        return db.value("SELECT confirmed_flush_lsn >= %s::pg_lsn FROM pg_replication_slots "
                        "WHERE slot_name = 'penstock_idle'", (target,))
    wait_for(confirmed_past, timeout=40, what="the slot to confirm past unpublished WAL")
    assert p.stop() == 0
    assert p.events() == []


def test_password_from_environment_never_leaks(cluster, db, make_penstock):
    secret = "s3cr3t-" + "".join(random.choices(string.ascii_lowercase, k=12))
    db.execute(f"CREATE ROLE repl_user LOGIN REPLICATION PASSWORD '{secret}'")
    db.execute("CREATE TABLE pw (id int PRIMARY KEY)")
    db.execute("ALTER TABLE pw OWNER TO repl_user")
    db.execute(f'GRANT CREATE ON DATABASE "{db.name}" TO repl_user')
    p = make_penstock("pw")
    p.spec["source"] = {"url": f"postgresql://repl_user@127.0.0.1:{cluster.port}/{db.name}",
                        "password_env": "PW_FOR_TEST"}
    p.env["PW_FOR_TEST"] = secret
    p.start()
    p.wait_streaming(db)
    db.execute("INSERT INTO pw VALUES (1)")
    wait_for(lambda: len(p.events()) >= 1, what="1 event")
    assert p.stop() == 0
    leaks = [p.stderr(), (p.state_dir / "jobs" / "pw" / "checkpoint.json").read_text()]
    leaks += [f.read_text() for f in p.out_dir.glob("*")]
    assert not any(secret in text for text in leaks)
    mode = os.stat(p.state_dir / "jobs" / "pw" / "checkpoint.json").st_mode & 0o777
    assert mode == 0o600
    assert os.stat(p.state_dir).st_mode & 0o777 == 0o700
    # A wrong password is refused with a one-line error that does not echo it.
    p.env["PW_FOR_TEST"] = "wrong-" + secret
    rc, _, err = p.run_to_exit()
    assert rc == 1
    assert "password authentication failed" in err and secret not in err


def test_rotation_keeps_every_event_in_order(db, make_penstock, tmp_path):
    db.execute("CREATE TABLE r (id int PRIMARY KEY, pad text)")
    p = make_penstock("rot", target=f"jsonl://{tmp_path}/out?max_file_bytes=4096")
    p.start()
    p.wait_streaming(db)
    db.execute("INSERT INTO r SELECT g, repeat('p', 50) FROM generate_series(1, 500) g")
    wait_for(lambda: len(p.events()) >= 500, what="500 events")
    assert p.stop() == 0
    files = sorted(p.out_dir.glob("rot-*.jsonl"))
    assert len(files) > 5
    assert [e["after"]["id"] for e in p.events()] == list(range(1, 501))


def test_stdout_target_and_ack_after_flush(db, make_penstock):
    db.execute("CREATE TABLE s (id int PRIMARY KEY, v text)")
    p = make_penstock("stdout", target="jsonl:-")
    p.start()
    p.wait_streaming(db)
    db.execute("INSERT INTO s SELECT g, 'v' || g FROM generate_series(1, 100) g")
    # The insert position, not pg_current_wal_lsn(): that is the *write*
    # position, which can be short of the commit under asynchronous commit.
    lsn = db.value("SELECT pg_current_wal_insert_lsn()")
    # The slot only moves past a change once penstock flushed it to stdout.
    wait_for(lambda: db.value("SELECT confirmed_flush_lsn >= %s::pg_lsn FROM pg_replication_slots "
                              "WHERE slot_name = 'penstock_stdout'", (lsn,)),
             what="the slot to confirm the insert")
    p.proc.send_signal(__import__("signal").SIGTERM)
    out, _ = p.proc.communicate(timeout=60)
    assert p.proc.returncode == 0
    events = [json.loads(line) for line in out.decode().splitlines()]
    assert [e["after"]["id"] for e in events] == list(range(1, 101))
    assert all(e["op"] == "c" and e["after"]["v"] == f"v{e['after']['id']}" for e in events)
