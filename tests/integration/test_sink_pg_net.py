"""Net changes in the PostgreSQL sink (src/sink/pg/pgsink_net.c): many changes of one
key inside one target transaction are applied as their net effect. The oracle
is the same sink applying the same changes one at a time (every change in its
own target transaction, where nothing can be combined): both targets must end
with the same rows.
"""
from conftest import wait_for
from test_sink_pg import T3, ok, rows_of, run, script, table_json, target  # noqa: F401 (fixture)

# (key, op, values) sequences that walk every state of pg_net.c NOTES 3.
U = {"u": 1}   # an unchanged (TOASTed) value


def changes():
    out = []
    # INS -> UPD (merged, unchanged kept) -> UPD -> DEL -> (NONE) -> INS -> UPD
    out += [("c", [10, "a", "big10"]), ("u", [10, "a2", U]), ("u", [10, U, "big10b"]),
            ("d", [10]), ("c", [10, "again", "big10c"]), ("u", [10, "again2", U])]
    # existing row: UPD -> UPD (unchanged) -> DEL -> INS (REPL) -> UPD (REPL merged)
    out += [("u", [1, "one", U]), ("u", [1, U, "BIG1x"]), ("d", [1]),
            ("c", [1, "reborn", "r"]), ("u", [1, "reborn2", U])]
    # existing row: DEL -> INS (REPL) -> DEL
    out += [("d", [2]), ("c", [2, "two", "t"]), ("d", [2])]
    # existing row: UPD -> DEL
    out += [("u", [3, "three", "x"]), ("d", [3])]
    # a sequence a consistent source never sends: INS of a present key
    # (restart: the held changes go first, then it fails like it would alone)
    # is left out; an UPD of an absent key is a missing row either way.
    # interleaved keys, many updates of a hot row
    for i in range(50):
        out += [("u", [4, f"hot{i}", U]), ("c", [100 + i, f"n{i}", None])]
    out += [("d", [100 + i]) for i in range(0, 50, 3)]
    return out


def steps_for(seq, one_by_one):
    steps = [{"prepare": "t"}, {"begin": {}}]
    steps += [{"op": "r", "table": "t", "new": [k, f"row{k}", f"BIG{k}"]} for k in (1, 2, 3, 4)]
    steps += [{"commit": "0/1"}, {"finish": "t"}, {"flush": True}]
    pos = 2
    for n, (op, vals) in enumerate(seq):
        if one_by_one or n % 7 == 0:
            steps.append({"begin": {}})
        if op == "d":
            steps.append({"op": "d", "table": "t", "old": [vals[0], None, None],
                          "old_is_key": True})
        else:
            steps.append({"op": op, "table": "t", "new": vals})
        if one_by_one or n % 7 == 6 or n == len(seq) - 1:
            steps.append({"commit": f"0/{pos:X}"})
            pos += 1
        if one_by_one:
            steps.append({"flush": True})
    if not one_by_one:
        steps.append({"flush": True})
    return steps


def test_net_changes_equal_one_by_one(db, target):
    other = db.cluster.new_database()
    try:
        res, err = run(script(target, T3, steps_for(changes(), one_by_one=False)))
        ok(res)
        res1, err1 = run(script(other, T3, steps_for(changes(), one_by_one=True)))
        ok(res1)
        assert rows_of(target) == rows_of(other)
        assert "found no row" not in err and "found no row" not in err1
        # the combined run wrote the hot row's updates once, not fifty times
        def updates(d):
            return d.value("SELECT n_tup_upd FROM pg_stat_user_tables WHERE relname = 't'")
        wait_for(lambda: updates(other) >= 50 and updates(target) > 0, 30,
                 what="the targets' table statistics")
        assert updates(target) < 10 <= 50 <= updates(other)
    finally:
        other.conn.close()


def test_table_with_another_unique_index_keeps_statement_order(db, target):
    """Swapping values of a second unique column through a temporary one:
    as net changes per key, row 1's final value would meet row 2's old one;
    such tables are applied change by change."""
    tables = {"u": table_json("u", [("id", "integer"), ("code", "text")], key=["id"])}
    target.execute("CREATE TABLE u (id integer PRIMARY KEY, code text UNIQUE)")
    steps = [{"begin": {}},
             {"op": "c", "table": "u", "new": [1, "a"]}, {"op": "c", "table": "u", "new": [2, "b"]},
             {"commit": "0/1"}, {"flush": True}, {"begin": {}},
             {"op": "u", "table": "u", "new": [1, "tmp"]}, {"op": "u", "table": "u", "new": [2, "a"]},
             {"op": "u", "table": "u", "new": [1, "b"]}, {"commit": "0/2"}, {"flush": True}]
    res, _ = run(script(target, tables, steps))
    ok(res)
    assert rows_of(target, "u") == [[1, "b"], [2, "a"]]


def test_keyless_table_keeps_row_order_against_its_updates(db, target):
    """Inserts into a table without a key are held; an update of one of
    them applies them first."""
    tables = {"h": table_json("h", [("a", "integer"), ("b", "text")])}
    target.execute("CREATE TABLE h (a integer, b text)")
    steps = [{"begin": {}}]
    steps += [{"op": "c", "table": "h", "new": [i, f"v{i}"]} for i in range(5)]
    steps += [{"op": "u", "table": "h", "old": [3, "v3"], "new": [3, "changed"]},
              {"op": "d", "table": "h", "old": [4, "v4"]},
              {"op": "c", "table": "h", "new": [4, "back"]},
              {"commit": "0/1"}, {"flush": True}]
    res, err = run(script(target, tables, steps))
    ok(res)
    assert "found no row" not in err
    assert rows_of(target, "h") == [[0, "v0"], [1, "v1"], [2, "v2"], [3, "changed"], [4, "back"]]


def test_held_changes_of_an_older_definition_go_first(db, target):
    """An update held under one definition of a table, then a key change of
    the same row under a newer definition (never held): the held update is
    applied first, so it still finds the row."""
    target.execute("CREATE TABLE t (id int PRIMARY KEY, a text, b int)")
    tables = {"v1": table_json("t", [("id", "integer"), ("a", "text")], key=["id"]),
              "v2": table_json("t", [("id", "integer"), ("a", "text"), ("b", "integer")],
                               key=["id"])}
    steps = [{"begin": {}}, {"op": "c", "table": "v1", "new": [1, "one"]}, {"commit": "0/1"},
             {"flush": True}, {"begin": {}},
             {"op": "u", "table": "v1", "new": [1, "held"]},
             {"op": "u", "table": "v2", "old": [1, None, None], "old_is_key": True,
              "new": [10, "held", 7]},
             {"commit": "0/2"}, {"flush": True}]
    res, err = run(script(target, tables, steps))
    ok(res)
    assert "found no row" not in err
    assert rows_of(target) == [[10, "held", 7]]
