"""Benchmark 3: steady pgbench at a fixed rate (pgbench -R RATE -T SECONDS,
4 clients) while penstock streams into PostgreSQL; the commit-to-applied lag
over the run.

How lag is measured: every pgbench transaction inserts a pgbench_history row
whose mtime is the transaction's start (CURRENT_TIMESTAMP), so it is at or
before the source commit. Source and target are databases of one server, so
they share one clock. A sampler asks the target every SAMPLE_MS for

    clock_timestamp() - max(mtime) of pgbench_history

the age of the newest source transaction the target holds. That is an upper
bound of the commit-to-applied lag of the transactions being applied at that
moment: it also counts the source transaction's own duration and the gap
since the last commit (at 2,000 tps, half a millisecond). The first 5 s are
warm-up and not counted. Prints p50, p99 and max of the samples, and the rate
pgbench achieved.

usage: lag.py PENSTOCK_BIN [RATE] [SECONDS]
"""
import json
import os
import shutil
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from conftest import PGBIN, Cluster, wait_for  # noqa: E402

BIN = sys.argv[1]
RATE = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
SECONDS = int(sys.argv[3]) if len(sys.argv) > 3 else 60
SAMPLE_MS = 50
WARMUP_S = 5


def pct(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100.0 * (len(s) - 1))))]


def main():
    base = tempfile.mkdtemp(prefix="penstock-bench-")
    os.chmod(base, 0o755)
    cluster = Cluster(base)
    work = tempfile.mkdtemp(prefix="lagbench-")
    url = f"postgresql://postgres@127.0.0.1:{cluster.port}"
    pgb = [str(PGBIN / "pgbench"), "-h", "127.0.0.1", "-p", str(cluster.port), "-U", "postgres"]
    p = None
    try:
        c = cluster.connect()
        c.cursor().execute("CREATE DATABASE src")
        c.cursor().execute("CREATE DATABASE dst")
        c.close()
        subprocess.run(pgb + ["-i", "-s", "1", "-q", "src"], check=True, capture_output=True)
        s = cluster.connect("src")
        s.cursor().execute("ALTER TABLE pgbench_history REPLICA IDENTITY FULL")
        # The test cluster runs synchronous_commit = off, where WAL (and so
        # the decoding) waits up to wal_writer_delay (200 ms) after a commit;
        # the source of a CDC tool commits durably. fsync stays off.
        s.cursor().execute("ALTER DATABASE src SET synchronous_commit = on")
        s.close()
        spec = {"name": "lag", "type": "sync", "source": {"url": f"{url}/src"},
                "target": {"url": f"{url}/dst"}}
        with open(f"{work}/spec.json", "w") as f:
            json.dump(spec, f)
        log = f"{work}/penstock.log"
        p = subprocess.Popen([BIN, "run", "--state-dir", f"{work}/state", f"{work}/spec.json"],
                             stderr=open(log, "w"))
        wait_for(lambda: "; streaming, " in open(log).read(), 300, what="penstock to stream")
        d = cluster.connect("dst")
        d.autocommit = True
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
        print(f"steady pgbench -R {RATE} for {SECONDS} s (4 clients) into PostgreSQL; "
              f"lag sampled every {SAMPLE_MS} ms after {WARMUP_S} s", flush=True)
        th.start()
        out = subprocess.run(pgb + ["-n", "-c", "4", "-j", "2", "-R", str(RATE), "-T",
                                    str(SECONDS), "src"], check=True, capture_output=True,
                             text=True).stdout
        done.set()
        th.join()
        tps = float(re.search(r"tps = ([0-9.]+)", out).group(1))
        end = cluster.connect("src")
        ec = end.cursor()
        ec.execute("SELECT pg_current_wal_insert_lsn()::text")
        lsn = ec.fetchone()[0]

        def caught_up():
            ec.execute("SELECT confirmed_flush_lsn >= %s::pg_lsn FROM pg_replication_slots "
                       "WHERE slot_name = 'penstock_lag'", (lsn,))
            return ec.fetchone()[0]
        wait_for(caught_up, 300, 0.05, what="penstock to catch up")
        ec.execute("SELECT count(*), sum(delta) FROM pgbench_history")
        want = ec.fetchone()
        end.close()
        cur.execute("SELECT count(*), sum(delta) FROM pgbench_history")
        assert cur.fetchone() == want, "target differs from the source"
        d.close()
    finally:
        if p:
            p.terminate()
            p.wait()
        cluster.stop()
        shutil.rmtree(base, ignore_errors=True)   # a cluster is GBs; leave none behind
        if sys.exc_info()[0] is None:   # on a failure, keep the logs it names
            shutil.rmtree(work, ignore_errors=True)
    print(f"pgbench achieved {tps:,.0f} tps (asked {RATE:,})")
    print(f"lag over {len(samples)} samples: p50 {statistics.median(samples) * 1000:.0f} ms, "
          f"p99 {pct(samples, 99) * 1000:.0f} ms, max {max(samples) * 1000:.0f} ms "
          f"(goal p99 < 500 ms)")


if __name__ == "__main__":
    main()
