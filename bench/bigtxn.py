"""Benchmark 4: one source transaction inserting ROWS rows with 200-byte
payloads, streamed by penstock into PostgreSQL; penstock's peak RSS (VmHWM of
/proc/PID/status, read before it stops) and the time until the slot confirms
the transaction, with the CPU seconds of the source's walsender, the
target's backends and penstock from the insert's start. It must complete,
and the target must hold every row. Source and target are separate clusters
with PostgreSQL's default durability (bench/benchlib.py).

penstock never holds a transaction whole: the reader pushes its changes
through the bounded queue (64 MiB, pipeline.h) and the PostgreSQL sink
applies them in one target transaction, holding at most PGS_NET_MAX_BYTES of
them for net changes (src/sink/pg/pgsink_net.c).

usage: bigtxn.py PENSTOCK_BIN [ROWS]
"""
import json
import shutil
import subprocess
import sys
import tempfile
import time

from benchlib import Measure, Servers, banner, cpu_line, cpu_seconds, save, sql, url, wait_for

BIN = sys.argv[1]
ROWS = int(sys.argv[2]) if len(sys.argv) > 2 else 5000000
GOAL_MIB = 64


def vm(pid, field):
    with open(f"/proc/{pid}/status") as f:
        return int(next(x for x in f if x.startswith(field + ":")).split()[1])


def main():
    srv = Servers()
    work = tempfile.mkdtemp(prefix="bigtxnbench-")
    p = None
    try:
        sql(srv.source, "postgres", "CREATE DATABASE src")
        sql(srv.target, "postgres", "CREATE DATABASE dst")
        sql(srv.source, "src", "CREATE TABLE big (id bigint PRIMARY KEY, payload text NOT NULL)")
        spec = {"name": "big", "type": "sync", "source": {"url": url(srv.source, "src")},
                "target": {"url": url(srv.target, "dst")}}
        with open(f"{work}/spec.json", "w") as f:
            json.dump(spec, f)
        log = f"{work}/penstock.log"
        p = subprocess.Popen([BIN, "run", "--state-dir", f"{work}/state", f"{work}/spec.json"],
                             stderr=open(log, "w"))
        wait_for(lambda: "; streaming, " in open(log).read(), 300, what="penstock to stream")
        banner(f"one transaction inserting {ROWS:,} rows of 200-byte payloads, streamed "
               f"into PostgreSQL")
        s = srv.source.connect("src")
        cur = s.cursor()
        peak = [0]
        pen0 = cpu_seconds(p.pid)
        with Measure(srv) as m:
            cur.execute("INSERT INTO big SELECT g, rpad(g::text || ':', 200, 'x') "
                        "FROM generate_series(1, %s) g", (ROWS,))
            t_insert = time.monotonic() - m._t0
            cur.execute("SELECT pg_current_wal_insert_lsn()::text")
            end = cur.fetchone()[0]

            def done():
                peak[0] = max(peak[0], vm(p.pid, "VmRSS"))
                assert p.poll() is None, f"penstock exited: see {log}"
                cur.execute("SELECT confirmed_flush_lsn >= %s::pg_lsn FROM pg_replication_slots "
                            "WHERE slot_name = 'penstock_big'", (end,))
                return cur.fetchone()[0]
            wait_for(done, 3600, 0.2, what="penstock to apply the transaction")
            m.stop_clock()
            pen = cpu_seconds(p.pid) - pen0
        hwm = vm(p.pid, "VmHWM")
        got = sql(srv.target, "dst", "SELECT count(*), sum(length(payload)) FROM big")[0]
        cur.execute("SELECT count(*), sum(length(payload)) FROM big")
        assert got == cur.fetchone() and got[0] == ROWS, f"target holds {got}"
        s.close()
    finally:
        if p:
            p.terminate()
            p.wait()
        srv.stop()
        if sys.exc_info()[0] is None:   # on a failure, keep the logs it names
            shutil.rmtree(work, ignore_errors=True)
    rec = m.record()
    rec["client"] = pen
    elapsed = rec["wall"]
    print(f"source insert {t_insert:.1f} s; penstock applied it {elapsed:.1f} s after the "
          f"insert began ({ROWS / elapsed:,.0f} rows/s); {cpu_line(rec)}")
    print(f"penstock peak RSS (VmHWM) {hwm / 1024:.0f} MiB (largest VmRSS sampled "
          f"{peak[0] / 1024:.0f} MiB; goal < {GOAL_MIB} MiB)")
    save("bigtxn", {"rows": ROWS, "insert_s": t_insert, "applied_s": elapsed,
                    "rss_kib": hwm, "completed": True, "cpu": rec})


if __name__ == "__main__":
    main()
