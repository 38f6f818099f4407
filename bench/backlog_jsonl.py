"""Benchmark: apply a backlog already in the slot into JSON lines, against the
floor — pg_recvlogical decoding the same backlog with pgoutput into a file
(the source's decoding alone). Alternates the two, ROUNDS times, each round
on a fresh database and backlog; prints medians and the ratio penstock/floor,
and penstock's peak RSS.

usage: backlog_jsonl.py PENSTOCK_BIN [ROUNDS] [UPDATE_TXNS] [INSERT_ROWS]
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from conftest import Cluster, wait_for  # noqa: E402  (the test harness's throwaway server)

BIN = sys.argv[1]
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 3
N_TX = int(sys.argv[3]) if len(sys.argv) > 3 else 20000
ROWS = int(sys.argv[4]) if len(sys.argv) > 4 else 200000
RECVLOGICAL = "/usr/lib/postgresql/15/bin/pg_recvlogical"


def one_round(cluster, n):
    db = cluster.new_database()
    db.execute("CREATE TABLE acc (id int PRIMARY KEY, bal int, pad text)")
    db.execute("CREATE PUBLICATION pub_floor FOR TABLE acc")
    db.execute("SELECT pg_create_logical_replication_slot('floor_%s', 'pgoutput')" % n)
    work = tempfile.mkdtemp(prefix="bench-")
    spec = {"name": f"bench{n}", "type": "cdc", "source": {"url": db.url},
            "target": {"url": f"jsonl://{work}/out"}}
    with open(f"{work}/spec.json", "w") as f:
        json.dump(spec, f)
    cmd = [BIN, "run", "--state-dir", f"{work}/state", f"{work}/spec.json"]
    # Create penstock's slot first, so both slots hold the same backlog.
    p = subprocess.Popen(cmd, stderr=open(f"{work}/setup.log", "w"))
    wait_for(lambda: "; streaming, " in open(f"{work}/setup.log").read())
    p.terminate()
    p.wait()
    db.execute(f"INSERT INTO acc SELECT g, 0, repeat('x', 80) FROM generate_series(1, {ROWS}) g")
    for i in range(N_TX):
        db.execute("UPDATE acc SET bal = bal + 1 WHERE id = %s", (i % ROWS + 1,))
    end = db.value("SELECT pg_current_wal_insert_lsn()")

    t0 = time.monotonic()
    subprocess.run([RECVLOGICAL, "-h", "127.0.0.1", "-p", str(cluster.port), "-U", "postgres",
                    "-d", db.name, "--slot", f"floor_{n}", "--start", "-o", "proto_version=1",
                    "-o", "publication_names=pub_floor", "-f", f"{work}/floor.out",
                    "--endpos", end, "--no-loop"], check=True)
    floor = time.monotonic() - t0

    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stderr=open(f"{work}/run.log", "w"))
    wait_for(lambda: db.value("SELECT confirmed_flush_lsn >= %s::pg_lsn FROM pg_replication_slots "
                              "WHERE slot_name = %s", (end, f"penstock_bench{n}")),
             timeout=1200, interval=0.01, what="penstock to catch up")
    pen = time.monotonic() - t0
    with open(f"/proc/{p.pid}/status") as f:
        rss_kib = int(next(line for line in f if line.startswith("VmHWM")).split()[1])
    p.terminate()
    p.wait()
    events = sum(1 for name in os.listdir(f"{work}/out") for _ in open(f"{work}/out/{name}"))
    assert events == ROWS + N_TX, f"penstock wrote {events} events, expected {ROWS + N_TX}"
    db.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
               "WHERE database = current_database()")
    return floor, pen, rss_kib


def main():
    base = tempfile.mkdtemp(prefix="penstock-bench-")
    os.chmod(base, 0o755)
    cluster = Cluster(base)
    changes = ROWS + N_TX
    print(f"backlog: {ROWS:,} inserts in one transaction + {N_TX:,} one-row update transactions "
          f"({changes:,} changes); {ROUNDS} rounds", flush=True)
    floors, pens, rss = [], [], []
    try:
        for n in range(ROUNDS):
            f, p, r = one_round(cluster, n)
            floors.append(f)
            pens.append(p)
            rss.append(r)
            print(f"  round {n + 1}: floor {f:.2f}s  penstock {p:.2f}s  peak RSS {r // 1024} MiB", flush=True)
    finally:
        cluster.stop()
    mf, mp = statistics.median(floors), statistics.median(pens)
    print(f"pg_recvlogical (decoding floor) median {mf:.2f}s  {changes / mf:,.0f} changes/s")
    print(f"penstock -> JSON lines          median {mp:.2f}s  {changes / mp:,.0f} changes/s  "
          f"peak RSS {max(rss) // 1024} MiB")
    print(f"ratio penstock/floor: {mp / mf:.2f}")


if __name__ == "__main__":
    main()
