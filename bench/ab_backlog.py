"""A/B of two penstock builds (or two target settings) on the backlog of
benchmark 2: each round generates TXNS pgbench transactions (4 clients) in
the source, then A and B (each a `sync` job with its own slot and target
database, alternating who goes first) catch up on the same backlog. Prints
each one's wall time and the CPU seconds of its walsender, its target
backends and penstock itself, medians, and B/A. For judging one change to
the apply path on a noisy machine: CPU times move less than wall times.

Source and target are separate clusters with PostgreSQL's default
durability (bench/benchlib.py; DURABILITY=fast for the non-durable one).

usage: ab_backlog.py PENSTOCK_A PENSTOCK_B [ROUNDS] [TXNS]

A_TARGET / B_TARGET: JSON objects of more "target" fields for A's / B's
spec, e.g. B_TARGET='{"async_commit": "off"}' to compare the PostgreSQL
sink's asynchronous commits with synchronous ones in one build.
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

from benchlib import (FAST_COMMITS, Measure, Servers, banner, cpu_line, medians, pgbench, save,
                      sql, url, wait_for)

BINS = {"A": sys.argv[1], "B": sys.argv[2]}
ROUNDS = int(sys.argv[3]) if len(sys.argv) > 3 else 4
TXNS = int(sys.argv[4]) if len(sys.argv) > 4 else 100000
TABLES = ["pgbench_accounts", "pgbench_branches", "pgbench_tellers", "pgbench_history"]


def digest(cluster, db):
    return [sql(cluster, db, f"SELECT count(*), coalesce(sum(hashtext(t::text)), 0) FROM {t} t")
            for t in TABLES]


def main():
    srv = Servers()
    work = tempfile.mkdtemp(prefix="abbench-")
    recs = {k: [] for k in BINS}
    poll = None
    try:
        for c in (srv.source, srv.target):
            sql(c, "postgres", "ALTER SYSTEM SET autovacuum = off")
            sql(c, "postgres", "SELECT pg_reload_conf()")
        sql(srv.source, "postgres", "CREATE DATABASE src")
        for db in ("dst_a", "dst_b"):
            sql(srv.target, "postgres", f"CREATE DATABASE {db}")
        subprocess.run(pgbench(srv.source) + ["-i", "-s", "1", "-q", "src"], check=True,
                       capture_output=True)
        sql(srv.source, "src", "ALTER TABLE pgbench_history REPLICA IDENTITY FULL")
        cmds = {}
        for k, binary in BINS.items():
            target = {"url": url(srv.target, f"dst_{k.lower()}")}
            target.update(json.loads(os.environ.get(f"{k}_TARGET", "{}")))
            spec = {"name": f"ab_{k.lower()}", "type": "sync",
                    "source": {"url": url(srv.source, "src")}, "target": target}
            with open(f"{work}/{k}.json", "w") as f:
                json.dump(spec, f)
            cmds[k] = [binary, "run", "--state-dir", f"{work}/state-{k}", f"{work}/{k}.json"]
            log = f"{work}/{k}-load.log"
            p = subprocess.Popen(cmds[k], stderr=open(log, "w"))
            wait_for(lambda: "; streaming, " in open(log).read(), 300, what=f"{k} to stream")
            p.terminate()
            assert p.wait() == 0, f"{k} failed: see {log}"
        poll = srv.source.connect("src")

        def reached(slot, end):
            with poll.cursor() as cur:
                cur.execute("SELECT confirmed_flush_lsn >= %s::pg_lsn FROM pg_replication_slots "
                            "WHERE slot_name = %s", (end, slot))
                return cur.fetchone()[0]

        banner(f"A {BINS['A']} {os.environ.get('A_TARGET', '')}\n"
               f"B {BINS['B']} {os.environ.get('B_TARGET', '')}\n"
               f"backlog of {TXNS:,} pgbench transactions, {ROUNDS} rounds")
        for r in range(ROUNDS):
            subprocess.run(pgbench(srv.source) + ["-n", "-c", "4", "-j", "2", "-t",
                                                  str(TXNS // 4), "src"],
                           check=True, capture_output=True, env=FAST_COMMITS)
            end = sql(srv.source, "src", "SELECT pg_current_wal_insert_lsn()::text")[0][0]
            sql(srv.source, "src", "VACUUM")
            for db in ("dst_a", "dst_b"):
                sql(srv.target, db, "VACUUM")
            for c in (srv.source, srv.target):
                sql(c, "postgres", "CHECKPOINT")
            for k in (["A", "B"] if r % 2 == 0 else ["B", "A"]):
                slot = f"penstock_ab_{k.lower()}"
                with Measure(srv) as m:
                    p = subprocess.Popen(cmds[k], stderr=open(f"{work}/{k}-{r}.log", "w"))
                    wait_for(lambda: reached(slot, end), 1200, 0.02, what=f"{k} to catch up")
                    m.stop_clock()
                    m.add_client(p.pid)
                p.terminate()
                assert p.wait() == 0, f"{k} failed: see {work}/{k}-{r}.log"
                rec = m.record()
                recs[k].append(rec)
                print(f"  round {r + 1}: {k} {rec['wall']:6.2f}s  {cpu_line(rec)}", flush=True)
        want = digest(srv.source, "src")
        assert digest(srv.target, "dst_a") == want and digest(srv.target, "dst_b") == want, \
            "a target differs from the source"
    finally:
        if poll:
            poll.close()
        srv.stop()
        if sys.exc_info()[0] is None:   # on a failure, keep the logs it names
            shutil.rmtree(work, ignore_errors=True)
    med = {k: medians(v) for k, v in recs.items()}
    for k in BINS:
        print(f"{k}: median {med[k]['wall']:.2f}s; medians {cpu_line(med[k])}")
    print(f"B/A wall: {med['B']['wall'] / med['A']['wall']:.2f} (per round: " + ", ".join(
        f"{b['wall'] / a['wall']:.2f}" for a, b in zip(recs["A"], recs["B"])) + ")")
    for f in ("walsender", "target_backends", "target", "client"):
        a, b = med["A"][f], med["B"][f]
        print(f"B/A CPU {f}: {b / a:.2f}" if a else f"B/A CPU {f}: -")
    save("ab_backlog", {"bins": BINS, "records": recs, "medians": med})


if __name__ == "__main__":
    main()
