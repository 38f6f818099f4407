"""`penstock compare`: the real binary against real PostgreSQL and SQLite.
Expected differences come from the changes the test itself makes, checked
against the databases; nothing waits by sleeping."""
import json
import os
import sqlite3
import subprocess

import pytest

from conftest import BIN, PGBIN, Writer, wait_equal, wait_for
from test_load import make_schema

ZOO_TABLES = ["public.zoo", "public.orders", "public.pairs", "public.log_full"]


def compare(*args, timeout=600):
    """Runs penstock compare --json; returns (exit status, report or None, stderr)."""
    p = subprocess.run([BIN, "compare", "--json", *args], capture_output=True, text=True,
                       timeout=timeout)
    report = json.loads(p.stdout) if p.stdout.strip().startswith("{") else None
    return p.returncode, report, p.stderr


def table(report, name):
    return next(t for t in report["tables"] if t["table"] == name)


def keyed_pair(db, target_db):
    for d in (db, target_db):
        d.execute("CREATE TABLE items (id int PRIMARY KEY, v text, amount numeric(12,2), "
                  "at timestamptz, flag boolean)")
        d.execute("CREATE TABLE pairs (a int, b text, v text, PRIMARY KEY (a, b))")
        d.execute("CREATE TABLE bag (x int, y text)")   # no key at all
        d.execute("CREATE TABLE uniq (code text NOT NULL UNIQUE, v int)")
    db.execute("INSERT INTO items SELECT g, 'v' || g, g * 1.25, '2024-01-01'::timestamptz + "
               "g * interval '1 hour', g % 2 = 0 FROM generate_series(1, 5000) g")
    db.execute("INSERT INTO pairs SELECT g % 50, 'k' || g, 'v' || g FROM generate_series(1, 3000) g")
    db.execute("INSERT INTO bag SELECT g % 3, 'same' FROM generate_series(1, 9) g")
    db.execute("INSERT INTO uniq SELECT 'c' || g, g FROM generate_series(1, 700) g")
    for t in ("items", "pairs", "bag", "uniq"):
        rows = db.execute(f"SELECT * FROM {t}")
        with target_db.conn.cursor() as cur:
            cols = ", ".join(["%s"] * len(rows[0]))
            cur.executemany(f"INSERT INTO {t} VALUES ({cols})", rows)


def test_identical_tables_are_equal(db, target_db):
    keyed_pair(db, target_db)
    rc, rep, err = compare("--source", db.url, "--target", target_db.url, "--chunk-rows", "700")
    assert rc == 0, err
    assert rep["equal"] and rep["consistent"]
    items = table(rep, "public.items")
    assert items["source_rows"] == items["target_rows"] == 5000
    assert items["chunks"] == items["chunks_checked"] == 8   # 7 full ranges and the open end
    assert items["key"] == ["id"] and items["key_source"] == "primary key"
    assert table(rep, "public.pairs")["key"] == ["a", "b"]
    uniq = table(rep, "public.uniq")
    assert uniq["key"] == ["code"] and uniq["key_source"].startswith("unique index")
    bag = table(rep, "public.bag")
    assert bag["key"] is None and bag["multiset"] == {"equal": True}
    assert "keys of differing rows cannot be named" in bag["note"]
    # count and sample modes agree; the readable output says equal
    for mode in (["--mode", "count"], ["--mode", "sample", "--sample-percent", "30"]):
        rc, rep, err = compare("--source", db.url, "--target", target_db.url, *mode)
        assert rc == 0 and rep["equal"], (mode, err)
    p = subprocess.run([BIN, "compare", "--source", db.url, "--target", target_db.url,
                        "--tables", "items,public.pair*"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert "public.items: equal" in p.stdout and "public.pairs: equal" in p.stdout
    assert "public.bag" not in p.stdout


def test_differences_are_classed_with_their_columns(db, target_db):
    keyed_pair(db, target_db)
    target_db.execute("UPDATE items SET v = 'changed', flag = NOT flag WHERE id = 1234")
    target_db.execute("DELETE FROM items WHERE id = 4999")
    target_db.execute("INSERT INTO items VALUES (7000, 'new', 1, now(), true)")
    target_db.execute("UPDATE pairs SET v = 'x' WHERE a = 7 AND b = 'k7'")
    target_db.execute("INSERT INTO bag VALUES (1, 'same')")   # a duplicate row
    rc, rep, err = compare("--source", db.url, "--target", target_db.url, "--chunk-rows", "600")
    assert rc == 1, err
    items = table(rep, "public.items")
    got = sorted((d["kind"], d["key"]["id"], tuple(d.get("columns", []))) for d in items["differences"])
    assert got == [("different", "1234", ("v", "flag")), ("extra_in_target", "7000", ()),
                   ("missing_in_target", "4999", ())]
    assert (items["missing_in_target"], items["extra_in_target"], items["different"]) == (1, 1, 1)
    assert items["source_rows"] == 5000 and items["target_rows"] == 5000
    pairs = table(rep, "public.pairs")
    assert [(d["key"], d["columns"]) for d in pairs["differences"]] == [({"a": "7", "b": "k7"}, ["v"])]
    bag = table(rep, "public.bag")
    assert not bag["equal"] and bag["multiset"] == {"equal": False}
    assert (bag["source_rows"], bag["target_rows"]) == (9, 10)
    assert table(rep, "public.uniq")["equal"]
    # --max-report caps the list, not the counts
    rc, rep, _ = compare("--source", db.url, "--target", target_db.url, "--max-report", "1",
                         "--tables", "public.items")
    items = table(rep, "public.items")
    assert rc == 1 and len(items["differences"]) == 1 and items["differences_truncated"]
    assert items["missing_in_target"] + items["extra_in_target"] + items["different"] == 3


def copy_table(source, target, table):
    """COPY source -> target through psql, streamed (no copy of it in memory)."""
    psql = str(PGBIN / "psql")
    out = subprocess.Popen([psql, "-X", "-q", "-h", "127.0.0.1", "-p", str(source.cluster.port),
                            "-U", "postgres", "-d", source.name, "-c",
                            f"COPY {table} TO STDOUT"], stdout=subprocess.PIPE)
    subprocess.run([psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p",
                    str(target.cluster.port), "-U", "postgres", "-d", target.name, "-c",
                    f"COPY {table} FROM STDIN"], stdin=out.stdout, check=True)
    out.stdout.close()
    assert out.wait() == 0


def test_million_rows_three_differences_and_repair(db, target_db):
    subprocess.run([str(PGBIN / "pgbench"), "-i", "-s", "10", "-q", "-I", "dtgp", "-h",
                    "127.0.0.1", "-p", str(db.cluster.port), "-U", "postgres", db.name],
                   check=True, capture_output=True)
    target_db.execute("CREATE TABLE pgbench_accounts (aid int NOT NULL, bid int, abalance int, "
                      "filler char(84))")
    copy_table(db, target_db, "pgbench_accounts")
    target_db.execute("ALTER TABLE pgbench_accounts ADD PRIMARY KEY (aid)")
    assert target_db.value("SELECT count(*) FROM pgbench_accounts") == 1000000
    target_db.execute("UPDATE pgbench_accounts SET abalance = abalance + 7 WHERE aid = 123456")
    target_db.execute("DELETE FROM pgbench_accounts WHERE aid = 654321")
    target_db.execute("INSERT INTO pgbench_accounts VALUES (1000001, 1, 0, 'extra')")
    args = ["--source", db.url, "--target", target_db.url, "--tables", "pgbench_accounts"]
    rc, rep, err = compare(*args)
    assert rc == 1, err
    acc = table(rep, "public.pgbench_accounts")
    got = sorted((d["kind"], d["key"]["aid"], tuple(d.get("columns", [])))
                 for d in acc["differences"])
    assert got == [("different", "123456", ("abalance",)),
                   ("extra_in_target", "1000001", ()), ("missing_in_target", "654321", ())]
    assert acc["source_rows"] == 1000000 and acc["target_rows"] == 1000000
    assert acc["chunks"] == 101 and acc["chunks_different"] == 3
    rc, rep, err = compare(*args, "--repair")
    assert rc == 0, err
    acc = table(rep, "public.pgbench_accounts")
    assert acc["repair"] == {"rows_written": 2, "rows_deleted": 1, "remaining": 0}
    # the target now holds the source's rows for those keys, and compares equal
    for aid in (123456, 654321, 1000001):
        assert target_db.execute("SELECT * FROM pgbench_accounts WHERE aid = %s", (aid,)) == \
            db.execute("SELECT * FROM pgbench_accounts WHERE aid = %s", (aid,))
    rc, rep, err = compare(*args)
    assert rc == 0 and rep["equal"], err


def test_postgresql_to_sqlite_type_zoo(db, tmp_path, make_job):
    make_schema(db)
    path = tmp_path / "target.db"
    p = make_job("zoo", target=f"sqlite://{path}", snapshot={"chunk_rows": 1000},
                 tables={"include": ZOO_TABLES})
    p.start()
    p.wait_streaming(db)
    wait_equal(db, None, ZOO_TABLES, sqlite_path=path)
    assert p.stop() == 0
    args = ["--source", db.url, "--target", f"sqlite://{path}", "--tables", ",".join(ZOO_TABLES),
            "--chunk-rows", "700"]
    rc, rep, err = compare(*args)
    assert rc == 0, (err, rep)
    assert table(rep, "public.zoo")["source_rows"] == 3
    assert table(rep, "public.orders")["chunks"] == 8
    assert table(rep, "public.log_full")["multiset"] == {"equal": True}
    # Other spellings of the same values are not differences: 1.50 vs 1.5,
    # another zone for the same instant, upper-case hex, 'true' for 1.
    c = sqlite3.connect(path)
    num = db.value("SELECT num::text FROM zoo WHERE id = 1")
    c.execute("UPDATE zoo SET num = ?, tstz = ?, by = ? WHERE id = 1",
              (num + "000", "2024-06-01 12:00:00+05:30", sqlite3.Binary(bytes([0, 255, 0]))))
    c.execute("UPDATE orders SET amount = '1.2500' WHERE id = 1")
    c.commit()
    rc, rep, err = compare(*args)
    assert rc == 0, (err, rep)
    # a changed value is found, with its column
    c.execute("UPDATE zoo SET txt = 'not the same', f8 = 0.5 WHERE id = 1")
    c.execute("DELETE FROM log_full WHERE rowid = (SELECT min(rowid) FROM log_full)")
    c.commit()
    c.close()
    rc, rep, err = compare(*args)
    assert rc == 1, err
    zoo = table(rep, "public.zoo")
    assert [(d["kind"], d["key"], d["columns"]) for d in zoo["differences"]] == \
        [("different", {"id": "1"}, ["f8", "txt"])]
    assert not table(rep, "public.log_full")["equal"]
    # repair rewrites the zoo row through the sink's own conversions
    rc, rep, err = compare(*args, "--tables", "public.zoo", "--repair")
    assert rc == 0, err
    rc, rep, err = compare(*args[:-4], "--tables", "public.zoo")
    assert rc == 0, err


def test_compare_against_a_running_job_reports_no_lag(db, target_db, make_job):
    port = str(db.cluster.port)
    base = [str(PGBIN / "pgbench"), "-h", "127.0.0.1", "-p", port, "-U", "postgres"]
    subprocess.run(base + ["-i", "-s", "1", "-q", db.name], check=True, capture_output=True)
    db.execute("ALTER TABLE pgbench_history REPLICA IDENTITY FULL")
    p = make_job("live", target=target_db.url)
    p.start()
    p.wait_streaming(db)
    bench = subprocess.Popen(base + ["-c", "2", "-T", "600", "-n", db.name],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: db.value("SELECT count(*) FROM pgbench_history") > 200, 60,
                 what="pgbench transactions")
        args = ["--source", db.url, "--target", target_db.url, "--job", "live",
                "--chunk-rows", "5000"]
        rc, rep, err = compare(*args)
        assert bench.poll() is None, "pgbench stopped early"
    finally:
        bench.terminate()
        bench.wait(30)
    assert rc == 0, (err, json.dumps(rep, indent=1))
    assert rep["equal"]
    hist = table(rep, "public.pgbench_history")
    assert hist["key"] is None and hist["multiset"]["equal"]
    # Lag was there to be seen: rows whose first look differed were settled
    # by waiting for the job, not reported.
    assert sum(t["settled"] for t in rep["tables"]) > 0, json.dumps(rep, indent=1)
    # A quiet source: a difference made in the target persists and is
    # reported after the wait, which only the fence message can end (no
    # other commit flows through the job).
    wait_equal(db, target_db, ["public.pgbench_tellers", "public.pgbench_history"])
    target_db.execute("UPDATE pgbench_tellers SET tbalance = tbalance + 1 WHERE tid = 3")
    rc, rep, err = compare(*args, "--lag-timeout", "30", "--tables", "pgbench_tellers")
    assert rc == 1, err
    tellers = table(rep, "public.pgbench_tellers")
    assert [(d["key"], d["columns"]) for d in tellers["differences"]] == \
        [({"tid": "3"}, ["tbalance"])]
    # and --repair under the job fixes it
    rc, rep, err = compare(*args, "--tables", "pgbench_tellers", "--repair")
    assert rc == 0, err
    assert table(rep, "public.pgbench_tellers")["repair"]["remaining"] == 0
    assert p.stop() == 0


def test_bad_input_exits_2_with_a_message(db, target_db, tmp_path):
    db.execute("CREATE TABLE t (id int PRIMARY KEY)")
    rc, rep, err = compare("--source", db.url, "--target", target_db.url, "--tables", "nosuch")
    assert rc == 2 and rep is None
    assert "no table of the source matches 'nosuch'" in err
    rc, _, err = compare("--source", db.url, "--target", target_db.url)
    assert rc == 2 and "public.t does not exist in the target" in err
    rc, _, err = compare("--source", db.url, "--target", target_db.url, "--mode", "quick")
    assert rc == 2 and "--mode: 'quick' is not count, full or sample" in err
    rc, _, err = compare("--source", "postgresql://postgres@127.0.0.1:1/x", "--target", target_db.url)
    assert rc == 2 and "cannot connect to PostgreSQL at 127.0.0.1:1" in err
    rc, _, err = compare("--source", "postgresql://u:secret@127.0.0.1/x", "--target", target_db.url)
    assert rc == 2 and "secret" not in err and "password" in err
    rc, _, err = compare("--source", db.url, "--target", f"sqlite://{tmp_path}/none.db")
    assert rc == 2 and "cannot open SQLite database" in err
    target_db.execute("CREATE TABLE t (id int PRIMARY KEY)")
    target_db.execute("INSERT INTO t VALUES (1)")
    rc, _, err = compare("--source", db.url, "--target", target_db.url, "--job", "ghost")
    assert rc == 2 and "holds no checkpoint of that job" in err
