"""Benchmark 4: one source transaction inserting ROWS rows with 200-byte
payloads, streamed by penstock into PostgreSQL; penstock's peak RSS (VmHWM of
/proc/PID/status, read before it stops) and the time until the slot confirms
the transaction. It must complete, and the target must hold every row.

penstock never holds a transaction whole: the reader pushes its changes
through the bounded queue (64 MiB, pipeline.h) and the PostgreSQL sink
applies them in one target transaction, holding at most PGS_NET_MAX_BYTES of
them for net changes (src/sink/pg_net.c).

usage: bigtxn.py PENSTOCK_BIN [ROWS]
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from conftest import Cluster, wait_for  # noqa: E402

BIN = sys.argv[1]
ROWS = int(sys.argv[2]) if len(sys.argv) > 2 else 5000000


def vm(pid, field):
    with open(f"/proc/{pid}/status") as f:
        return int(next(x for x in f if x.startswith(field + ":")).split()[1])


def main():
    base = tempfile.mkdtemp(prefix="penstock-bench-")
    os.chmod(base, 0o755)
    cluster = Cluster(base)
    work = tempfile.mkdtemp(prefix="bigtxnbench-")
    url = f"postgresql://postgres@127.0.0.1:{cluster.port}"
    p = None
    try:
        c = cluster.connect()
        c.autocommit = True
        c.cursor().execute("CREATE DATABASE src")
        c.cursor().execute("CREATE DATABASE dst")
        c.close()
        s = cluster.connect("src")
        s.autocommit = True
        cur = s.cursor()
        cur.execute("CREATE TABLE big (id bigint PRIMARY KEY, payload text NOT NULL)")
        spec = {"name": "big", "type": "sync", "source": {"url": f"{url}/src"},
                "target": {"url": f"{url}/dst"}}
        with open(f"{work}/spec.json", "w") as f:
            json.dump(spec, f)
        log = f"{work}/penstock.log"
        p = subprocess.Popen([BIN, "run", "--state-dir", f"{work}/state", f"{work}/spec.json"],
                             stderr=open(log, "w"))
        wait_for(lambda: "; streaming, " in open(log).read(), 300, what="penstock to stream")
        print(f"one transaction inserting {ROWS:,} rows of 200-byte payloads, streamed "
              f"into PostgreSQL", flush=True)
        t0 = time.monotonic()
        cur.execute("INSERT INTO big SELECT g, rpad(g::text || ':', 200, 'x') "
                    "FROM generate_series(1, %s) g", (ROWS,))
        t_insert = time.monotonic() - t0
        cur.execute("SELECT pg_current_wal_insert_lsn()::text")
        end = cur.fetchone()[0]
        peak = [0]

        def done():
            peak[0] = max(peak[0], vm(p.pid, "VmRSS"))
            assert p.poll() is None, f"penstock exited: see {log}"
            cur.execute("SELECT confirmed_flush_lsn >= %s::pg_lsn FROM pg_replication_slots "
                        "WHERE slot_name = 'penstock_big'", (end,))
            return cur.fetchone()[0]
        wait_for(done, 3600, 0.2, what="penstock to apply the transaction")
        elapsed = time.monotonic() - t0
        hwm = vm(p.pid, "VmHWM")
        d = cluster.connect("dst")
        dc = d.cursor()
        dc.execute("SELECT count(*), sum(length(payload)) FROM big")
        got = dc.fetchone()
        d.close()
        cur.execute("SELECT count(*), sum(length(payload)) FROM big")
        assert got == cur.fetchone() and got[0] == ROWS, f"target holds {got}"
        s.close()
    finally:
        if p:
            p.terminate()
            p.wait()
        cluster.stop()
        shutil.rmtree(base, ignore_errors=True)   # a cluster is GBs; leave none behind
        if sys.exc_info()[0] is None:   # on a failure, keep the logs it names
            shutil.rmtree(work, ignore_errors=True)
    print(f"source insert {t_insert:.1f} s; penstock applied it {elapsed:.1f} s after the "
          f"insert began ({ROWS / elapsed:,.0f} rows/s)")
    print(f"penstock peak RSS (VmHWM) {hwm / 1024:.0f} MiB (largest VmRSS sampled "
          f"{peak[0] / 1024:.0f} MiB; goal < 100 MiB)")


if __name__ == "__main__":
    main()
