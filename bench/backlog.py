"""Benchmarks 2 and 5: a backlog of pgbench transactions already in the slots,
consumed by

  penstock -> PostgreSQL   a `sync` job resumed after its load
  CREATE SUBSCRIPTION      PostgreSQL's own logical replication, same backlog
  penstock -> SQLite       a `sync` job into an SQLite file
  penstock -> JSON lines   a `cdc` job into JSON-lines files
  pg_recvlogical           the floor: the source's pgoutput decoding alone,
                           written to a file

Every consumer has its own slot, all created at the same point before the
first backlog, so each round every one of them holds the same backlog. A round
generates TXNS pgbench transactions (4 clients), then runs the consumers one
after the other in an order that rotates per round, each timed from its start
until its slot confirms the backlog's end (pg_recvlogical: until it reaches
--endpos). Every target is then checked against the source.

usage: backlog.py PENSTOCK_BIN [ROUNDS] [TXNS]

PROFILE=WHO (one of the consumer names below, e.g. "penstock -> pg") records
the whole machine with `perf record -a -g` while that consumer runs, into
PROFILE_DIR (default /tmp) as perf-<round>.data; read it with `perf report`.
"""
import json
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from conftest import PGBIN, Cluster, wait_for  # noqa: E402

BIN = sys.argv[1]
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 3
TXNS = int(sys.argv[3]) if len(sys.argv) > 3 else 100000
TABLES = ["pgbench_accounts", "pgbench_branches", "pgbench_tellers", "pgbench_history"]
CHANGES_PER_TXN = 4   # pgbench TPC-B: 3 updates and 1 insert


def sql(cluster, db, text, fetch=False):
    c = cluster.connect(db)
    try:
        with c.cursor() as cur:
            cur.execute(text)
            return cur.fetchall() if fetch else None
    finally:
        c.close()


_poll = {}


def reached(cluster, slot, end):
    """Polled every 20 ms on one connection: a connection per poll would fork
    a backend 50 times a second, on the cores the consumers share."""
    if "conn" not in _poll:
        _poll["conn"] = cluster.connect("src")
        _poll["conn"].autocommit = True
    with _poll["conn"].cursor() as cur:
        cur.execute("SELECT confirmed_flush_lsn >= %s::pg_lsn FROM pg_replication_slots "
                    "WHERE slot_name = %s", (end, slot))
        return cur.fetchone()[0]


def digest(cluster, db):
    return [sql(cluster, db, f"SELECT count(*), coalesce(sum(hashtext(t::text)), 0) FROM {t} t",
                fetch=True)[0] for t in TABLES]


# What SQLite can be compared on without type conversions: row counts and the
# sums of every balance.
BALANCES = [("pgbench_accounts", "abalance"), ("pgbench_branches", "bbalance"),
            ("pgbench_tellers", "tbalance"), ("pgbench_history", "delta")]


def sums_pg(cluster, db):
    return [tuple(sql(cluster, db, f"SELECT count(*), coalesce(sum({c}), 0) FROM {t}",
                      fetch=True)[0]) for t, c in BALANCES]


def sums_sqlite(path):
    c = sqlite3.connect(path)
    try:
        return [tuple(c.execute(f"SELECT count(*), coalesce(sum({col}), 0) FROM {t}").fetchone())
                for t, col in BALANCES]
    finally:
        c.close()


def jsonl_events(directory):
    n = 0
    for name in os.listdir(directory):
        with open(os.path.join(directory, name)) as f:
            n += sum(1 for line in f if line.endswith("\n"))
    return n


def settle(cluster):
    """Autovacuum is off for the run (it would start on whichever consumer
    happens to follow pgbench); vacuum and checkpoint by hand between rounds,
    so every consumer starts on a quiet server."""
    for db in ("src", "dst_penstock", "dst_sub"):
        sql(cluster, db, "VACUUM")
    sql(cluster, "postgres", "CHECKPOINT")


def penstock_job(work, name, spec):
    with open(f"{work}/{name}.json", "w") as f:
        json.dump(spec, f)
    return [BIN, "run", "--state-dir", f"{work}/state", f"{work}/{name}.json"]


def start_until_streaming(cmd, log):
    p = subprocess.Popen(cmd, stderr=open(log, "w"))
    wait_for(lambda: "; streaming, " in open(log).read(), 300, what=f"{cmd[-1]} to stream")
    p.terminate()
    assert p.wait() == 0, f"{cmd[-1]} failed: see {log}"


def main():
    base = tempfile.mkdtemp(prefix="penstock-bench-")
    os.chmod(base, 0o755)
    cluster = Cluster(base)
    work = tempfile.mkdtemp(prefix="backlogbench-")
    os.chmod(work, 0o755)
    url = f"postgresql://postgres@127.0.0.1:{cluster.port}"
    pgb = [str(PGBIN / "pgbench"), "-h", "127.0.0.1", "-p", str(cluster.port), "-U", "postgres"]
    who_all = ["penstock -> pg", "subscription", "penstock -> sqlite", "penstock -> jsonl",
               "pg_recvlogical (floor)"]
    times = {w: [] for w in who_all}
    rss = {w: [] for w in who_all if w.startswith("penstock")}
    cpu = {w: [] for w in who_all if w.startswith("penstock")}
    try:
        sql(cluster, "postgres", "ALTER SYSTEM SET autovacuum = off")
        sql(cluster, "postgres", "SELECT pg_reload_conf()")
        for db in ("src", "dst_penstock", "dst_sub"):
            sql(cluster, "postgres", f"CREATE DATABASE {db}")
        subprocess.run(pgb + ["-i", "-s", "1", "-q", "src"], check=True, capture_output=True)
        sql(cluster, "src", "ALTER TABLE pgbench_history REPLICA IDENTITY FULL")
        # penstock's jobs: load (sync) or not (cdc), then stop; slots stay.
        jobs = {
            "penstock -> pg": penstock_job(work, "pg", {
                "name": "blpg", "type": "sync", "source": {"url": f"{url}/src"},
                "target": {"url": f"{url}/dst_penstock"}}),
            "penstock -> sqlite": penstock_job(work, "sqlite", {
                "name": "blsqlite", "type": "sync", "source": {"url": f"{url}/src"},
                "target": {"url": f"sqlite://{work}/target.db"}}),
            "penstock -> jsonl": penstock_job(work, "jsonl", {
                "name": "bljsonl", "type": "cdc", "source": {"url": f"{url}/src"},
                "target": {"url": f"jsonl://{work}/events"}}),
        }
        slots = {"penstock -> pg": "penstock_blpg", "penstock -> sqlite": "penstock_blsqlite",
                 "penstock -> jsonl": "penstock_bljsonl", "subscription": "sub_slot",
                 "pg_recvlogical (floor)": "floor_slot"}
        for w, cmd in jobs.items():
            start_until_streaming(cmd, f"{work}/{w.split()[-1]}-setup.log")
        # the subscription: same data and a slot at the same point (no writes meanwhile)
        schema = subprocess.run([str(PGBIN / "pg_dump"), "-h", "127.0.0.1", "-p",
                                 str(cluster.port), "-U", "postgres", "src"],
                                check=True, capture_output=True).stdout
        subprocess.run([str(PGBIN / "psql"), "-h", "127.0.0.1", "-p", str(cluster.port), "-U",
                        "postgres", "-q", "-X", "dst_sub"], input=schema, check=True,
                       stdout=subprocess.DEVNULL)
        sql(cluster, "src", "CREATE PUBLICATION sub_pub FOR TABLE " + ", ".join(TABLES))
        sql(cluster, "src", "SELECT pg_create_logical_replication_slot('sub_slot', 'pgoutput')")
        sql(cluster, "src", "SELECT pg_create_logical_replication_slot('floor_slot', 'pgoutput')")
        sql(cluster, "dst_sub", f"CREATE SUBSCRIPTION sub CONNECTION 'host=127.0.0.1 "
            f"port={cluster.port} user=postgres dbname=src' PUBLICATION sub_pub WITH "
            f"(create_slot = false, slot_name = 'sub_slot', copy_data = false, enabled = false)")
        print(f"backlog: {TXNS:,} pgbench transactions (4 clients, {TXNS * CHANGES_PER_TXN:,} "
              f"changes) per round; {ROUNDS} rounds", flush=True)
        events_before = 0
        for r in range(ROUNDS):
            subprocess.run(pgb + ["-n", "-c", "4", "-j", "2", "-t", str(TXNS // 4), "src"],
                           check=True, capture_output=True)
            end = sql(cluster, "src", "SELECT pg_current_wal_insert_lsn()::text", fetch=True)[0][0]
            settle(cluster)
            order = who_all[r % len(who_all):] + who_all[:r % len(who_all)]
            for who in order:
                perf = None
                if os.environ.get("PROFILE") == who:
                    out = os.path.join(os.environ.get("PROFILE_DIR", "/tmp"), f"perf-{r + 1}.data")
                    perf = subprocess.Popen(["perf", "record", "-a", "-g", "-q", "-o", out],
                                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                    time.sleep(0.5)   # perf attaches to every CPU before the consumer starts
                t0 = time.monotonic()
                if who in jobs:
                    p = subprocess.Popen(jobs[who], stderr=open(f"{work}/run{r}-{who.split()[-1]}.log", "w"))
                    wait_for(lambda: reached(cluster, slots[who], end), 1200, 0.02,
                             what=f"{who} to catch up")
                    elapsed = time.monotonic() - t0
                    with open(f"/proc/{p.pid}/status") as f:
                        rss[who].append(int(next(x for x in f if x.startswith("VmHWM")).split()[1]))
                    with open(f"/proc/{p.pid}/stat") as f:   # utime + stime, in ticks
                        ticks = sum(int(x) for x in f.read().rsplit(")", 1)[1].split()[11:13])
                    cpu[who].append(ticks / os.sysconf("SC_CLK_TCK"))
                    p.terminate()
                    assert p.wait() == 0, f"{who} failed"
                elif who == "subscription":
                    sql(cluster, "dst_sub", "ALTER SUBSCRIPTION sub ENABLE")
                    wait_for(lambda: reached(cluster, "sub_slot", end), 1200, 0.02)
                    elapsed = time.monotonic() - t0
                    sql(cluster, "dst_sub", "ALTER SUBSCRIPTION sub DISABLE")
                else:
                    subprocess.run([str(PGBIN / "pg_recvlogical"), "-h", "127.0.0.1", "-p",
                                    str(cluster.port), "-U", "postgres", "-d", "src", "--slot",
                                    "floor_slot", "--start", "-o", "proto_version=1", "-o",
                                    "publication_names=sub_pub", "-f", f"{work}/floor.out",
                                    "--endpos", end, "--no-loop"], check=True)
                    elapsed = time.monotonic() - t0
                if perf:
                    perf.send_signal(signal.SIGINT)
                    perf.wait()
                times[who].append(elapsed)
                print(f"  round {r + 1}: {who:<24} {elapsed:6.2f}s  "
                      f"{TXNS * CHANGES_PER_TXN / elapsed:9,.0f} changes/s"
                      + (f"  (penstock CPU {cpu[who][-1]:.2f}s)" if who in cpu else ""), flush=True)
            want = digest(cluster, "src")
            assert digest(cluster, "dst_penstock") == want, "penstock's PostgreSQL target differs"
            wait_for(lambda: digest(cluster, "dst_sub") == want, 60)
            assert sums_sqlite(f"{work}/target.db") == sums_pg(cluster, "src"), \
                "penstock's SQLite target differs"
            events = jsonl_events(f"{work}/events")
            assert events - events_before == TXNS * CHANGES_PER_TXN, \
                f"JSON lines: {events - events_before} events, expected {TXNS * CHANGES_PER_TXN}"
            events_before = events
    finally:
        if "conn" in _poll:
            _poll["conn"].close()
        try:
            sql(cluster, "dst_sub", "ALTER SUBSCRIPTION sub DISABLE")
            sql(cluster, "dst_sub", "ALTER SUBSCRIPTION sub SET (slot_name = NONE)")
            sql(cluster, "dst_sub", "DROP SUBSCRIPTION sub")
        except Exception:
            pass
        cluster.stop()
        shutil.rmtree(base, ignore_errors=True)   # a cluster is GBs; leave none behind
        if sys.exc_info()[0] is None:   # on a failure, keep the logs it names
            shutil.rmtree(work, ignore_errors=True)
    med = {w: statistics.median(v) for w, v in times.items()}
    changes = TXNS * CHANGES_PER_TXN
    for w in who_all:
        extra = (f"  peak RSS {max(rss[w]) // 1024} MiB, CPU {statistics.median(cpu[w]):.2f}s"
                 if w in rss else "")
        print(f"{w:<24} median {med[w]:6.2f}s  {TXNS / med[w]:8,.0f} txn/s  "
              f"{changes / med[w]:9,.0f} changes/s{extra}")
    floor = med["pg_recvlogical (floor)"]
    print(f"ratio penstock->pg / subscription: {med['penstock -> pg'] / med['subscription']:.2f}"
          f"  (goal <= 0.75)")
    for w in ("penstock -> pg", "penstock -> sqlite", "penstock -> jsonl", "subscription"):
        print(f"ratio {w} / floor: {med[w] / floor:.2f}")


if __name__ == "__main__":
    main()
