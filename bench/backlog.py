"""Benchmarks 2 and 5: a backlog of pgbench transactions already in the slots,
consumed by

  penstock -> PostgreSQL   a `sync` job resumed after its load
  CREATE SUBSCRIPTION      PostgreSQL's own logical replication, same backlog
  penstock -> SQLite       a `sync` job into an SQLite file
  penstock -> JSON lines   a `cdc` job into JSON-lines files
  pg_recvlogical           the floor: the source's pgoutput decoding alone,
                           written to a file

Source and target are separate clusters with PostgreSQL's default durability
(bench/benchlib.py; DURABILITY=fast for the labelled non-durable
configuration): the source holds the pgbench database, the target one
database per PostgreSQL consumer. Every consumer has its own slot, all
created at the same point before the first backlog, so each round every one
of them holds the same backlog. A round generates TXNS pgbench transactions
(4 clients), then runs the consumers one after the other in an order that
rotates per round, each timed from its start until its slot confirms the
backlog's end (pg_recvlogical: until it reaches --endpos), with the CPU
seconds of the source's walsender, the target's backends and the consumer
itself. Every target is then checked against the source.

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
import subprocess
import sys
import tempfile
import time

from benchlib import (FAST_COMMITS, PGBIN, Measure, Servers, banner, cpu_line, medians, pgbench,
                      save, sql, url, wait_for)

BIN = sys.argv[1]
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 3
TXNS = int(sys.argv[3]) if len(sys.argv) > 3 else 100000
TABLES = ["pgbench_accounts", "pgbench_branches", "pgbench_tellers", "pgbench_history"]
CHANGES_PER_TXN = 4   # pgbench TPC-B: 3 updates and 1 insert
WHO = ["penstock -> pg", "subscription", "penstock -> sqlite", "penstock -> jsonl",
       "pg_recvlogical (floor)"]
SLOTS = {"penstock -> pg": "penstock_blpg", "penstock -> sqlite": "penstock_blsqlite",
         "penstock -> jsonl": "penstock_bljsonl", "subscription": "sub_slot",
         "pg_recvlogical (floor)": "floor_slot"}


class SlotPoll:
    """Polled every 20 ms on one connection: a connection per poll would
    fork a backend 50 times a second, on the cores the consumers share."""

    def __init__(self, cluster):
        self.conn = cluster.connect("src")

    def reached(self, slot, end):
        with self.conn.cursor() as cur:
            cur.execute("SELECT confirmed_flush_lsn >= %s::pg_lsn FROM pg_replication_slots "
                        "WHERE slot_name = %s", (end, slot))
            return cur.fetchone()[0]


def digest(cluster, db):
    return [sql(cluster, db, f"SELECT count(*), coalesce(sum(hashtext(t::text)), 0) FROM {t} t")[0]
            for t in TABLES]


# What SQLite can be compared on without type conversions: row counts and the
# sums of every balance.
BALANCES = [("pgbench_accounts", "abalance"), ("pgbench_branches", "bbalance"),
            ("pgbench_tellers", "tbalance"), ("pgbench_history", "delta")]


def sums_pg(cluster, db):
    return [tuple(sql(cluster, db, f"SELECT count(*), coalesce(sum({c}), 0) FROM {t}")[0])
            for t, c in BALANCES]


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


def settle(srv):
    """Autovacuum is off for the run (it would start on whichever consumer
    happens to follow pgbench); vacuum and checkpoint by hand between rounds,
    so every consumer starts on quiet servers."""
    sql(srv.source, "src", "VACUUM")
    for db in ("dst_penstock", "dst_sub"):
        sql(srv.target, db, "VACUUM")
    sql(srv.source, "postgres", "CHECKPOINT")
    sql(srv.target, "postgres", "CHECKPOINT")


def penstock_job(work, name, spec):
    with open(f"{work}/{name}.json", "w") as f:
        json.dump(spec, f)
    return [BIN, "run", "--state-dir", f"{work}/state", f"{work}/{name}.json"]


def start_until_streaming(cmd, log):
    p = subprocess.Popen(cmd, stderr=open(log, "w"))
    wait_for(lambda: "; streaming, " in open(log).read(), 300, what=f"{cmd[-1]} to stream")
    p.terminate()
    assert p.wait() == 0, f"{cmd[-1]} failed: see {log}"


def setup(srv, work):
    for c in (srv.source, srv.target):
        sql(c, "postgres", "ALTER SYSTEM SET autovacuum = off")
        sql(c, "postgres", "SELECT pg_reload_conf()")
    sql(srv.source, "postgres", "CREATE DATABASE src")
    for db in ("dst_penstock", "dst_sub"):
        sql(srv.target, "postgres", f"CREATE DATABASE {db}")
    subprocess.run(pgbench(srv.source) + ["-i", "-s", "1", "-q", "src"], check=True,
                   capture_output=True)
    sql(srv.source, "src", "ALTER TABLE pgbench_history REPLICA IDENTITY FULL")
    src = url(srv.source, "src")
    # penstock's jobs: load (sync) or not (cdc), then stop; slots stay.
    jobs = {
        "penstock -> pg": penstock_job(work, "pg", {
            "name": "blpg", "type": "sync", "source": {"url": src},
            "target": {"url": url(srv.target, "dst_penstock")}}),
        "penstock -> sqlite": penstock_job(work, "sqlite", {
            "name": "blsqlite", "type": "sync", "source": {"url": src},
            "target": {"url": f"sqlite://{work}/target.db"}}),
        "penstock -> jsonl": penstock_job(work, "jsonl", {
            "name": "bljsonl", "type": "cdc", "source": {"url": src},
            "target": {"url": f"jsonl://{work}/events"}}),
    }
    for w, cmd in jobs.items():
        start_until_streaming(cmd, f"{work}/{w.split()[-1]}-setup.log")
    # the subscription: same data and a slot at the same point (no writes meanwhile)
    base = ["-h", "127.0.0.1", "-U", "postgres"]
    schema = subprocess.run([str(PGBIN / "pg_dump"), *base, "-p", str(srv.source.port), "src"],
                            check=True, capture_output=True).stdout
    subprocess.run([str(PGBIN / "psql"), *base, "-p", str(srv.target.port), "-q", "-X",
                    "dst_sub"], input=schema, check=True, stdout=subprocess.DEVNULL)
    sql(srv.source, "src", "CREATE PUBLICATION sub_pub FOR TABLE " + ", ".join(TABLES))
    sql(srv.source, "src", "SELECT pg_create_logical_replication_slot('sub_slot', 'pgoutput')")
    sql(srv.source, "src", "SELECT pg_create_logical_replication_slot('floor_slot', 'pgoutput')")
    sql(srv.target, "dst_sub", f"CREATE SUBSCRIPTION sub CONNECTION 'host=127.0.0.1 "
        f"port={srv.source.port} user=postgres dbname=src' PUBLICATION sub_pub WITH "
        f"(create_slot = false, slot_name = 'sub_slot', copy_data = false, enabled = false)")
    return jobs


def consume(srv, poll, jobs, who, end, work, r):
    """One consumer on the backlog: its measurement record."""
    with Measure(srv) as m:
        if who in jobs:
            p = subprocess.Popen(jobs[who], stderr=open(f"{work}/run{r}-{who.split()[-1]}.log",
                                                        "w"))
            wait_for(lambda: poll.reached(SLOTS[who], end), 1200, 0.02, what=f"{who} to catch up")
            m.stop_clock()
            with open(f"/proc/{p.pid}/status") as f:
                rss = int(next(x for x in f if x.startswith("VmHWM")).split()[1])
            m.add_client(p.pid)
        elif who == "subscription":
            sql(srv.target, "dst_sub", "ALTER SUBSCRIPTION sub ENABLE")
            wait_for(lambda: poll.reached("sub_slot", end), 1200, 0.02)
            m.stop_clock()
        else:
            subprocess.run([str(PGBIN / "pg_recvlogical"), "-h", "127.0.0.1", "-p",
                            str(srv.source.port), "-U", "postgres", "-d", "src", "--slot",
                            "floor_slot", "--start", "-o", "proto_version=1", "-o",
                            "publication_names=sub_pub", "-f", f"{work}/floor.out",
                            "--endpos", end, "--no-loop"], check=True)
    if who in jobs:
        p.terminate()
        assert p.wait() == 0, f"{who} failed"
    elif who == "subscription":
        sql(srv.target, "dst_sub", "ALTER SUBSCRIPTION sub DISABLE")
    rec = m.record()
    if who in jobs:
        rec["rss_kib"] = rss
    return rec


def check(srv, work, events_before):
    want = digest(srv.source, "src")
    assert digest(srv.target, "dst_penstock") == want, "penstock's PostgreSQL target differs"
    wait_for(lambda: digest(srv.target, "dst_sub") == want, 60)
    assert sums_sqlite(f"{work}/target.db") == sums_pg(srv.source, "src"), \
        "penstock's SQLite target differs"
    events = jsonl_events(f"{work}/events")
    assert events - events_before == TXNS * CHANGES_PER_TXN, \
        f"JSON lines: {events - events_before} events, expected {TXNS * CHANGES_PER_TXN}"
    return events


def main():
    srv = Servers()
    work = tempfile.mkdtemp(prefix="backlogbench-")
    os.chmod(work, 0o755)
    recs = {w: [] for w in WHO}
    poll = None
    try:
        jobs = setup(srv, work)
        poll = SlotPoll(srv.source)
        banner(f"backlog: {TXNS:,} pgbench transactions (4 clients, {TXNS * CHANGES_PER_TXN:,} "
               f"changes) per round; {ROUNDS} rounds")
        events = 0
        for r in range(ROUNDS):
            subprocess.run(pgbench(srv.source) + ["-n", "-c", "4", "-j", "2", "-t",
                                                  str(TXNS // 4), "src"],
                           check=True, capture_output=True, env=FAST_COMMITS)
            end = sql(srv.source, "src", "SELECT pg_current_wal_insert_lsn()::text")[0][0]
            settle(srv)
            order = WHO[r % len(WHO):] + WHO[:r % len(WHO)]
            for who in order:
                perf = None
                if os.environ.get("PROFILE") == who:
                    out = os.path.join(os.environ.get("PROFILE_DIR", "/tmp"), f"perf-{r + 1}.data")
                    perf = subprocess.Popen(["perf", "record", "-a", "-g", "-q", "-o", out],
                                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                    time.sleep(0.5)   # perf attaches to every CPU before the consumer starts
                rec = consume(srv, poll, jobs, who, end, work, r)
                if perf:
                    perf.send_signal(signal.SIGINT)
                    perf.wait()
                recs[who].append(rec)
                print(f"  round {r + 1}: {who:<24} {rec['wall']:6.2f}s  "
                      f"{TXNS * CHANGES_PER_TXN / rec['wall']:9,.0f} changes/s  "
                      f"{cpu_line(rec, 'penstock' if who in jobs else 'client')}",
                      flush=True)
            events = check(srv, work, events)
    finally:
        if poll:
            poll.conn.close()
        try:
            sql(srv.target, "dst_sub", "ALTER SUBSCRIPTION sub DISABLE")
            sql(srv.target, "dst_sub", "ALTER SUBSCRIPTION sub SET (slot_name = NONE)")
            sql(srv.target, "dst_sub", "DROP SUBSCRIPTION sub")
        except Exception:
            pass
        srv.stop()
        if sys.exc_info()[0] is None:   # on a failure, keep the logs it names
            shutil.rmtree(work, ignore_errors=True)
    med = {w: medians(v) for w, v in recs.items()}
    changes = TXNS * CHANGES_PER_TXN
    print(f"medians of {ROUNDS} rounds:")
    for w in WHO:
        extra = (f"  peak RSS {max(x['rss_kib'] for x in recs[w]) // 1024} MiB"
                 if "rss_kib" in recs[w][0] else "")
        print(f"{w:<24} {med[w]['wall']:6.2f}s  {TXNS / med[w]['wall']:8,.0f} txn/s  "
              f"{changes / med[w]['wall']:9,.0f} changes/s  {cpu_line(med[w], 'client')}{extra}")
    floor = med["pg_recvlogical (floor)"]["wall"]
    sub = med["subscription"]["wall"]
    print(f"ratio penstock->pg / subscription: {med['penstock -> pg']['wall'] / sub:.2f}"
          f"  (goal <= 0.75); per round: " + ", ".join(
              f"{a['wall'] / b['wall']:.2f}" for a, b in zip(recs["penstock -> pg"],
                                                              recs["subscription"])))
    for w in ("penstock -> pg", "penstock -> sqlite", "penstock -> jsonl", "subscription"):
        goal = {"penstock -> pg": "  (goal <= 1.15)", "penstock -> sqlite": "  (goal <= 1.0)",
                "penstock -> jsonl": "  (goal <= 1.0)"}.get(w, "")
        print(f"ratio {w} / floor: {med[w]['wall'] / floor:.2f}{goal}")
    save("backlog", {"txns": TXNS, "rounds": ROUNDS, "records": recs, "medians": med})


if __name__ == "__main__":
    main()
