"""Trickle feeds into JSON lines (issue 21, items 2 and 3): net changes per
processing range (target.changes "net", with update_mask or merge), and the
events split into one file sequence per operation (target.split)."""
import json
import signal

from conftest import Writer, wait_for, lsn_int
from test_trickle import run_range

# Each scenario is a list of transactions on keys of its own; a key listed
# in PRE exists before the range. Together they are every combination of
# insert, update and delete of one key, key changes included.
PRE = [4, 5, 6, 7, 8, 9, 11, 13, 14, 15, 16, 17, 18, 19]
SCENARIOS = [
    # inserted in the range
    [["INSERT INTO t VALUES (1, 'a1', 1)"]],                                  # insert
    [["INSERT INTO t VALUES (2, 'a2', 1)"], ["UPDATE t SET v = 'b2' WHERE id = 2"],
     ["UPDATE t SET n = 3 WHERE id = 2"]],                                    # insert, updates
    [["INSERT INTO t VALUES (3, 'a3', 1)", "DELETE FROM t WHERE id = 3"]],    # insert, delete
    [["INSERT INTO t VALUES (10, 'a10', 1)"], ["DELETE FROM t WHERE id = 10"],
     ["INSERT INTO t VALUES (10, 'c10', 2)"]],                                # insert, delete, insert
    [["INSERT INTO t VALUES (12, 'a12', 1)"], ["UPDATE t SET id = 112 WHERE id = 12"]],
    # there before the range
    [["UPDATE t SET v = 'u4' WHERE id = 4"]],                                 # update
    [["UPDATE t SET v = 'u5' WHERE id = 5", "UPDATE t SET n = 55 WHERE id = 5"]],
    [["UPDATE t SET v = 'u6' WHERE id = 6"], ["DELETE FROM t WHERE id = 6"]],  # update, delete
    [["DELETE FROM t WHERE id = 7"]],                                         # delete
    [["DELETE FROM t WHERE id = 8"], ["INSERT INTO t VALUES (8, 'again', 8)"]],
    [["DELETE FROM t WHERE id = 9"], ["INSERT INTO t VALUES (9, 'x', 9)"],
     ["DELETE FROM t WHERE id = 9"]],                                         # delete, insert, delete
    [["UPDATE t SET id = 111 WHERE id = 11"]],                                # key change
    [["UPDATE t SET v = 'u13' WHERE id = 13"], ["UPDATE t SET id = 113 WHERE id = 13"],
     ["UPDATE t SET n = 1313 WHERE id = 113"]],                               # update, key change, update
    [["DELETE FROM t WHERE id = 15", "UPDATE t SET id = 15, v = 'moved' WHERE id = 14"]],
    [["UPDATE t SET id = 116 WHERE id = 16"], ["UPDATE t SET id = 16, n = 0 WHERE id = 116"]],
    [["UPDATE t SET n = n WHERE id = 19"]],                                   # rewritten as it was
    [["UPDATE t SET id = 117 WHERE id = 17", "DELETE FROM t WHERE id = 117"]],
    [["UPDATE t SET v = 'u18' WHERE id = 18"], ["UPDATE t SET v = 'pre18' WHERE id = 18"]],
]


def rows(db):
    return {r[0]: {"id": r[0], "v": r[1], "n": r[2]} for r in db.execute("SELECT id, v, n FROM t")}


def net_job(make_penstock, name, **target):
    p = make_penstock(name)
    p.spec["target"].update({"changes": "net", **target})
    return p


def apply_events(state, events):
    """The rows a consumer holds after applying the events in order."""
    state = dict(state)
    for e in events:
        if e["op"] in ("c", "u", "r"):
            state[e["after"]["id"]] = e["after"]
        elif e["op"] == "d":
            del state[e["before"]["id"]]
    return state


def setup_table(db):
    db.execute("CREATE TABLE t (id int PRIMARY KEY, v text, n int)")
    db.execute("INSERT INTO t SELECT g, 'pre' || g, g FROM unnest(%s::int[]) g", (PRE,))


def play_scenarios(db):
    """Runs the scenarios' transactions interleaved (round-robin), so the
    keys' changes are mixed in the log as a busy range mixes them."""
    for step in range(max(len(s) for s in SCENARIOS)):
        for s in SCENARIOS:
            if step < len(s):
                for sql in s[step]:
                    db.execute(sql)
                db.conn.commit()


def test_net_changes_of_every_combination_equal_the_source(db, make_penstock):
    setup_table(db)
    db.conn.commit()
    p = net_job(make_penstock, "net")
    run_range(p)                                       # the slot; an empty range
    before = rows(db)
    play_scenarios(db)
    after = rows(db)
    frm, to, changes, err = run_range(p)
    events = p.events()
    assert changes > len(events), err
    # one event per key, carrying the range
    keys = [e["after"]["id"] if e["after"] else e["before"]["id"] for e in events]
    assert len(keys) == len(set(keys)), events
    assert all(e["range"] == {"from": frm, "to": to} for e in events), events
    # the op of each key follows from whether it existed before and after
    for e, k in zip(events, keys):
        want = {(False, True): "c", (True, True): "u", (True, False): "d"}[(k in before, k in after)]
        assert e["op"] == want, (k, e)
        if e["op"] == "d":
            assert e["before"] == {"id": k}, e   # the key as it was before the range
        if e["op"] == "c":
            assert e["before"] is None, e
    # nothing for the keys that neither existed before nor exist after
    touched = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
    assert set(keys) - touched <= {18, 19}     # rewritten to their own values
    assert touched <= set(keys)
    # applied to the rows before the range, they give the source's rows now
    assert apply_events(before, events) == after
    # the range left: the next one holds nothing
    frm2, _, changes2, _ = run_range(p)
    assert frm2 == to and changes2 == 0 and len(p.events()) == len(events)


def test_net_with_update_mask_and_with_merge(db, make_penstock, tmp_path):
    setup_table(db)
    db.conn.commit()
    mask = net_job(make_penstock, "mask", update_mask=True)
    mask.spec["target"]["url"] = f"jsonl://{tmp_path}/mask"
    mask.out_dir = tmp_path / "mask"
    merge = net_job(make_penstock, "merge", merge=True)
    merge.spec["target"]["url"] = f"jsonl://{tmp_path}/merge"
    merge.out_dir = tmp_path / "merge"
    merge.workdir = tmp_path / "mergework"
    merge.workdir.mkdir()
    merge.state_dir = merge.workdir / "state"
    run_range(mask)
    run_range(merge)
    before = rows(db)
    play_scenarios(db)
    after = rows(db)
    bound = db.value("SELECT pg_current_wal_insert_lsn()::text")
    run_range(mask, until=bound)
    run_range(merge, until=bound)
    masked, merged = mask.events(), merge.events()
    assert apply_events(before, masked) == after
    assert apply_events(before, merged) == after
    for e in masked:
        k = e["after"]["id"] if e["after"] else None
        if e["op"] == "u":
            # every column whose value the range changed is named
            diff = {c for c in ("v", "n") if before[k][c] != after[k][c]}
            assert diff <= set(e["changed"]) <= {"v", "n"}, e
        else:
            assert "changed" not in e, e
    # merge: inserts and updates are one op, deletes stay
    assert {e["op"] for e in merged} == {"u", "d"}, merged
    assert all(e["before"] is None for e in merged if e["op"] == "u")
    assert len(merged) == len(masked)


def test_net_options_are_refused_where_they_do_not_apply(db, make_penstock):
    db.execute("CREATE TABLE t (id int PRIMARY KEY)")
    p = make_penstock("bad")
    p.spec["target"]["update_mask"] = True
    rc, _, err = p.run_to_exit()
    assert rc == 2 and "target.update_mask applies to net changes only" in err, err
    p.spec["target"] = {"url": "jsonl:-", "split": "operation"}
    rc, _, err = p.run_to_exit()
    assert rc == 2 and "it needs a directory" in err, err
    p.spec["target"] = {"url": "jsonl:-", "changes": "net", "update_mask": True, "merge": True}
    rc, _, err = p.run_to_exit()
    assert rc == 2 and "do not go together" in err, err
    p.spec["target"] = {"url": "jsonl:-", "changes": "some"}
    rc, _, err = p.run_to_exit()
    assert rc == 2 and "target.changes: 'some' is not one of all, net" in err, err


def test_scheduled_net_runs_under_writes_equal_the_source(db, make_job):
    """A sync job with net changes: the load, then ranges under concurrent
    writes. Applying every range's events in order gives the source's rows
    (w_items has a key; w_history has none and passes through whole)."""
    Writer.create_tables(db)
    p = make_job("netfeed")
    p.spec["target"]["changes"] = "net"
    writer = Writer(db, seed=5)
    writer.start()
    ranges = []
    try:
        for _ in range(4):
            start = writer.txns
            frm, to, _, _ = run_range(p)
            ranges.append((frm, to))
            wait_for(lambda: writer.txns > start + 20, 60, what="more source transactions")
    finally:
        writer.stop()
    frm, to, _, _ = run_range(p)
    ranges.append((frm, to))
    for (_, a_to), (b_from, _) in zip(ranges, ranges[1:]):
        assert a_to == b_from, ranges
    events = p.events()
    items = [e for e in events if e["source"]["table"] == "w_items"]
    history = [e for e in events if e["source"]["table"] == "w_history"]
    # one event per key and range
    seen = set()
    for e in items:
        if e["op"] == "r":
            continue
        key = (e["range"]["to"], (e["after"] or e["before"])["id"])
        assert key not in seen, e
        seen.add(key)
        assert (e["range"]["from"], e["range"]["to"]) in ranges, e
    state = {}
    for e in items:
        if e["op"] in ("r", "c", "u"):
            state[e["after"]["id"]] = (e["after"]["v"], e["after"]["pad"])
        elif e["op"] == "d":
            del state[e["before"]["id"]]
    src = {r[0]: (r[1], r[2]) for r in db.execute("SELECT id, v, pad FROM w_items")}
    assert state == src
    # the keyless table: every insert, once
    got = sorted((e["after"]["k"], e["after"]["note"]) for e in history if e["op"] in ("r", "c"))
    assert got == sorted(db.execute("SELECT k, note FROM w_history"))
    assert not [e for e in events if e.get("reprocessing")]


def test_a_net_run_killed_mid_range_is_redone_whole(db, make_penstock):
    """Killed while it reads its range, a net run leaves no event and the
    checkpoint at the range's start; killed after its events are written but
    before its checkpoint, the next run writes the range again, flagged."""
    setup_table(db)
    db.conn.commit()
    p = net_job(make_penstock, "kill")
    _, start, _, _ = run_range(p)
    before = rows(db)
    for i in range(100):
        db.execute("INSERT INTO t SELECT g, 'v' || g, 0 FROM generate_series(%s, %s) g",
                   (1000 + i * 50, 1000 + i * 50 + 49))
        db.execute("UPDATE t SET n = n + 1 WHERE id BETWEEN %s AND %s",
                   (1000 + i * 50 - 100, 1000 + i * 50))
        db.execute("DELETE FROM t WHERE id = %s", (1000 + i * 50 + 7,))
        db.conn.commit()
    after = rows(db)
    # 1. killed in the middle of the range, while changes are read
    p.start(extra_env={"PENSTOCK_FAULT": "source.read:crash@8000"}, args=("--until", "caught-up"))
    p.proc.wait(timeout=120)
    assert p.proc.returncode == -signal.SIGKILL, p.stderr()
    ck = p.checkpoint()
    assert ck["cdc_state"] == "TFSTART" and ck["position"] == start, ck
    assert p.events() == [], "nothing of a range is written before its end"
    # 2. killed after the whole net set is written, before its checkpoint
    p.start(extra_env={"PENSTOCK_FAULT": "checkpoint.after_flush:crash@2"},
            args=("--until", "caught-up"))
    p.proc.wait(timeout=120)
    assert p.proc.returncode == -signal.SIGKILL, p.stderr()
    first = p.events()
    assert first and p.checkpoint()["position"] == start
    assert apply_events(before, first) == after
    # 3. the redo: the same net set again, every event flagged
    frm, to, _, err = run_range(p)
    assert frm == start and 'marked "reprocessing": true' in err, err
    redo = p.events()[len(first):]
    assert redo and all(e.get("reprocessing") for e in redo)
    assert apply_events(before, redo) == after
    assert p.checkpoint()["cdc_state"] == "TFEND"


def split_view(e):
    """An event without what differs between two runs (ts_ms, position)."""
    e = dict(e)
    e.pop("ts_ms")
    e.pop("position", None)
    return json.dumps(e, sort_keys=True)


def test_split_outputs_union_equals_the_unsplit_stream(db, make_penstock, tmp_path):
    db.execute("CREATE TABLE t (id int PRIMARY KEY, v text, n int)")
    db.execute("CREATE TABLE k (a int, b text)")          # no key: inserts only
    db.conn.commit()
    one = make_penstock("one")
    split = make_penstock("split")
    split.spec["target"] = {"url": f"jsonl://{tmp_path}/split", "split": "operation"}
    split.out_dir = tmp_path / "split"
    split.workdir = tmp_path / "splitwork"
    split.workdir.mkdir()
    split.state_dir = split.workdir / "state"
    run_range(one)
    run_range(split)
    for i in range(1, 301):
        db.execute("INSERT INTO t VALUES (%s, %s, %s)", (i, f"v{i}", i))
        if i % 3 == 0:
            db.execute("UPDATE t SET n = n + 1 WHERE id = %s", (i - 1,))
        if i % 7 == 0:
            db.execute("DELETE FROM t WHERE id = %s", (i - 2,))
        if i % 50 == 0:
            db.execute("INSERT INTO k VALUES (%s, 'x')", (i,))
            db.execute("SELECT pg_logical_emit_message(true, 'p', %s)", (f"m{i}",))
        db.conn.commit()
    db.execute("TRUNCATE k")
    db.conn.commit()
    bound = db.value("SELECT pg_current_wal_insert_lsn()::text")
    run_range(one, until=bound)
    run_range(split, until=bound)
    whole = one.events()
    files = {}
    for f in sorted(split.out_dir.glob("*.jsonl")):
        kind = f.name.split(".")[1].split("-")[0]
        files.setdefault(kind, []).extend(json.loads(line) for line in f.read_text().splitlines())
    assert set(files) == {"insert", "update", "delete", "other"}, files.keys()
    want = {"insert": {"c"}, "update": {"u"}, "delete": {"d"}, "other": {"t", "m"}}
    for kind, events in files.items():
        assert {e["op"] for e in events} == want[kind], kind
    # the union is the unsplit stream, event for event
    union = [e for events in files.values() for e in events]
    assert sorted(map(split_view, union)) == sorted(map(split_view, whole))

    # within a file, commit order; across files, merged by position and lsn
    def order(e):
        return (lsn_int(e["position"]), e["source"]["lsn"])
    for events in files.values():
        assert [order(e) for e in events] == sorted(order(e) for e in events)
    merged = sorted(union, key=order)
    assert [split_view(e) for e in merged] == [split_view(e) for e in whole]


def test_net_changes_of_a_job_that_runs_until_stopped(db, make_penstock):
    """Without --until each flush is a range: the ranges follow each other,
    a key has at most one event per range, and the events applied in order
    give the source's rows."""
    setup_table(db)
    db.conn.commit()
    p = net_job(make_penstock, "cont")
    p.start()
    p.wait_streaming(db)
    before = rows(db)
    for i in range(40):
        db.execute("INSERT INTO t VALUES (%s, 'x', 0)", (100 + i,))
        db.execute("UPDATE t SET n = n + 1 WHERE id IN (4, 5, %s)", (100 + i,))
        if i % 5 == 4:
            db.execute("DELETE FROM t WHERE id = %s", (100 + i - 2,))
        db.conn.commit()
    after = rows(db)
    db.execute("SELECT pg_logical_emit_message(true, 'done', 'x')")
    db.conn.commit()
    wait_for(lambda: any(e["op"] == "m" for e in p.events()), 60, what="the last event")
    assert p.stop() == 0
    events = [e for e in p.events() if e["op"] != "m"]
    assert apply_events(before, events) == after
    ranges = []
    for e in events:
        r = (e["range"]["from"], e["range"]["to"])
        if not ranges or ranges[-1] != r:
            assert r not in ranges, "a range's events are together"
            ranges.append(r)
    for (_, a_to), (b_from, _) in zip(ranges, ranges[1:]):
        assert a_to == b_from, ranges
    keys = [(e["range"]["to"], (e["after"] or e["before"])["id"]) for e in events]
    assert len(keys) == len(set(keys))


def test_net_changes_from_mariadb_with_exact_update_masks(mariadb, tmp_path):
    """The same combinations from a MariaDB source, whose binlog carries the
    whole row before each change: a net update's before is the whole row as
    it was before the range, and the mask of a key that was only updated is
    exactly the columns its updates changed."""
    from conftest import Penstock
    mariadb.execute("DROP DATABASE IF EXISTS nd")
    mariadb.execute("CREATE DATABASE nd")
    mariadb.execute("CREATE TABLE t (id int PRIMARY KEY, v varchar(20), n int)", database="nd")
    for k in PRE:
        mariadb.execute("INSERT INTO t VALUES (%s, %s, %s)", (k, f"pre{k}", k), database="nd")
    spec = {"name": "mynet", "type": "cdc", "source": {"url": mariadb.url},
            "target": {"url": f"jsonl://{tmp_path}/out", "changes": "net", "update_mask": True},
            "tables": {"include": ["nd.t"]}}
    p = Penstock(tmp_path, spec)

    def my_rows():
        return {r[0]: {"id": r[0], "v": r[1], "n": r[2]}
                for r in mariadb.execute("SELECT id, v, n FROM t", database="nd")}
    run_range(p)
    before = my_rows()
    # each statement commits on its own; the mask each key should get is
    # read from the rows between statements
    masks, moved = {}, set()
    for step in range(max(len(s) for s in SCENARIOS)):
        for s in SCENARIOS:
            for sql in (s[step] if step < len(s) else []):
                prev = my_rows()
                mariadb.execute(sql, database="nd")
                now = my_rows()
                for k in set(prev) | set(now):
                    if k in prev and k in now and prev[k] != now[k]:
                        masks.setdefault(k, set()).update(c for c in ("v", "n")
                                                          if prev[k][c] != now[k][c])
                    elif (k in prev) != (k in now):
                        moved.add(k)
    after = my_rows()
    frm, to, _, err = run_range(p)
    events = p.events()
    assert events, err
    assert apply_events(before, events) == after
    exact = 0
    for e in events:
        assert e["range"] == {"from": frm, "to": to}
        if e["op"] in ("u", "d"):
            k = (e["before"] or {}).get("id")
            assert e["before"] == before[k], e     # the whole row before the range
        if e["op"] == "u" and k not in moved:
            assert set(e["changed"]) == masks[k], e
            exact += 1
    assert exact >= len([k for k in masks if k not in moved]), (exact, masks)
    assert exact > 0
