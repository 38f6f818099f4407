"""Benchmark 3: steady pgbench at a fixed rate (pgbench -R RATE -T SECONDS,
4 clients) while penstock streams into PostgreSQL; the commit-to-applied lag
over the run. Source and target are separate clusters with PostgreSQL's
default durability (bench/benchlib.py), on one machine.

How lag is measured: every pgbench transaction inserts a pgbench_history row
whose mtime is the transaction's start (CURRENT_TIMESTAMP), so it is at or
before the source commit. Both servers read the machine's one clock. A
sampler asks the target every SAMPLE_MS for

    clock_timestamp() - max(mtime) of pgbench_history

the age of the newest source transaction the target holds. That is an upper
bound of the commit-to-applied lag of the transactions being applied at that
moment: it also counts the source transaction's own duration and the gap
since the last commit (at 2,000 tps, half a millisecond). The first 5 s are
warm-up and not counted. Prints p50, p99 and max of the samples, the rate
pgbench achieved, and the CPU seconds of the source's walsender, the
target's backends and penstock over the run.

The pgbench database is initialised at scale LAG_SCALE (10): pgbench's own
manual asks for a scale at least the number of clients, "else you'll mostly
be measuring update contention" — at scale 1 the 4 clients queue on the one
pgbench_branches row, each holding its lock through its commit's WAL flush,
and a durable source then cannot reach 2,000 tps on two cores whatever
consumes its log.

Before penstock starts, the same pgbench runs alone on the source for
SECONDS, nothing decoding its log: the rate the durable source sustains on
this machine by itself, and what it costs in CPU. When the rate asked is
out of reach, that is the floor that says so, from the same run.

usage: lag.py PENSTOCK_BIN [RATE] [SECONDS] [SCALE]
"""
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from benchlib import (DURABLE, Measure, Servers, banner, cpu_line, cpu_seconds, pgbench, save,
                      sql, url, wait_for)

BIN = sys.argv[1]
RATE = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
SECONDS = int(sys.argv[3]) if len(sys.argv) > 3 else 60
SCALE = int(sys.argv[4]) if len(sys.argv) > 4 else 10
SAMPLE_MS = 50
WARMUP_S = 5
GOAL_P99_MS = 250


def pct(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100.0 * (len(s) - 1))))]


def steady_pgbench(srv):
    """pgbench -R RATE for SECONDS on the source, 4 clients: the tps it achieved."""
    out = subprocess.run(pgbench(srv.source) + ["-n", "-c", "4", "-j", "2", "-R", str(RATE),
                                                "-T", str(SECONDS), "src"],
                         check=True, capture_output=True, text=True).stdout
    return float(re.search(r"tps = ([0-9.]+)", out).group(1))


def main():
    srv = Servers()
    work = tempfile.mkdtemp(prefix="lagbench-")
    p = None
    try:
        sql(srv.source, "postgres", "CREATE DATABASE src")
        sql(srv.target, "postgres", "CREATE DATABASE dst")
        subprocess.run(pgbench(srv.source) + ["-i", "-s", str(SCALE), "-q", "src"], check=True,
                       capture_output=True)
        sql(srv.source, "src", "ALTER TABLE pgbench_history REPLICA IDENTITY FULL")
        if not DURABLE:
            # With synchronous_commit = off, WAL (and so the decoding) waits
            # up to wal_writer_delay (200 ms) after a commit; the source of a
            # CDC tool commits durably.
            sql(srv.source, "src", "ALTER DATABASE src SET synchronous_commit = on")
        # the floor: the same load with nobody consuming the source's log
        banner(f"pgbench -R {RATE} for {SECONDS} s alone on the source (scale {SCALE}, no "
               f"consumer)")
        with Measure(srv) as alone:
            alone_tps = steady_pgbench(srv)
        alone_rec = alone.record()
        print(f"pgbench alone achieved {alone_tps:,.0f} tps (asked {RATE:,}); CPU s: source "
              f"{alone_rec['source']:.2f}, pgbench {alone_rec['client']:.2f}", flush=True)
        sql(srv.source, "src", "VACUUM")
        sql(srv.source, "postgres", "CHECKPOINT")
        spec = {"name": "lag", "type": "sync", "source": {"url": url(srv.source, "src")},
                "target": {"url": url(srv.target, "dst")}}
        with open(f"{work}/spec.json", "w") as f:
            json.dump(spec, f)
        log = f"{work}/penstock.log"
        p = subprocess.Popen([BIN, "run", "--state-dir", f"{work}/state", f"{work}/spec.json"],
                             stderr=open(log, "w"))
        wait_for(lambda: "; streaming, " in open(log).read(), 300, what="penstock to stream")
        d = srv.target.connect("dst")
        cur = d.cursor()
        # the sampler's query reads the newest row by index, not by a scan
        cur.execute("CREATE INDEX ON pgbench_history (mtime)")

        samples = []
        done = threading.Event()

        def sampler():
            t_start = time.monotonic()
            while not done.is_set():
                t = time.monotonic()
                cur.execute("SELECT extract(epoch FROM clock_timestamp() - max(mtime)) "
                            "FROM pgbench_history")
                age = cur.fetchone()[0]
                if age is not None and t - t_start >= WARMUP_S:
                    samples.append(float(age))
                time.sleep(max(0.0, SAMPLE_MS / 1000.0 - (time.monotonic() - t)))

        th = threading.Thread(target=sampler)
        banner(f"steady pgbench -R {RATE} for {SECONDS} s (4 clients, scale {SCALE}) into "
               f"PostgreSQL; lag sampled every {SAMPLE_MS} ms after {WARMUP_S} s")
        pen0 = cpu_seconds(p.pid)
        with Measure(srv) as m:
            th.start()
            tps = steady_pgbench(srv)
            done.set()
            th.join()
            m.stop_clock()
            pen = cpu_seconds(p.pid) - pen0
        lsn = sql(srv.source, "src", "SELECT pg_current_wal_insert_lsn()::text")[0][0]
        wait_for(lambda: sql(srv.source, "src", "SELECT confirmed_flush_lsn >= %s::pg_lsn FROM "
                             "pg_replication_slots WHERE slot_name = 'penstock_lag'", (lsn,))[0][0],
                 300, 0.05, what="penstock to catch up")
        want = sql(srv.source, "src", "SELECT count(*), sum(delta) FROM pgbench_history")[0]
        cur.execute("SELECT count(*), sum(delta) FROM pgbench_history")
        assert cur.fetchone() == want, "target differs from the source"
        d.close()
    finally:
        if p:
            p.terminate()
            p.wait()
        srv.stop()
        if sys.exc_info()[0] is None:   # on a failure, keep the logs it names
            shutil.rmtree(work, ignore_errors=True)
    rec = m.record()
    rec["pgbench"] = rec["client"]   # the children waited for: pgbench
    rec["client"] = pen
    p50, p99, mx = (statistics.median(samples) * 1000, pct(samples, 99) * 1000,
                    max(samples) * 1000)
    print(f"pgbench achieved {tps:,.0f} tps (asked {RATE:,})")
    print(f"lag over {len(samples)} samples: p50 {p50:.0f} ms, p99 {p99:.0f} ms, max {mx:.0f} ms "
          f"(goal p99 < {GOAL_P99_MS} ms)")
    print(f"over the {SECONDS} s: {cpu_line(rec)}; pgbench {rec['pgbench']:.2f}")
    save("lag", {"rate": RATE, "seconds": SECONDS, "scale": SCALE, "tps": tps,
                 "alone_tps": alone_tps, "alone_cpu": alone_rec, "samples": len(samples),
                 "p50_ms": p50, "p99_ms": p99, "max_ms": mx, "cpu": rec})


if __name__ == "__main__":
    main()
