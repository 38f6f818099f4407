"""Benchmark: `penstock compare --mode full` of pgbench_accounts at scale
SCALE (1M rows at 10) PostgreSQL -> PostgreSQL, with equal tables and with
three differing rows (one changed, one deleted, one added in the target),
next to `pgcopydb compare data` on the same tables in the same run. Source
and target are separate clusters with PostgreSQL's default durability
(bench/benchlib.py).

The pgcopydb in Debian bookworm (0.10) has no `compare` command (it came in
0.14). When it is missing the script says so and measures instead a floor:
one whole-table digest per side, run on both servers at once (count and md5
of every row's text in key order) — what any in-database check must at
least do, and which only says "equal or not", never which rows.

Each tool runs ROUNDS times, alternating; medians and ratios are printed,
with the CPU seconds of both servers and of the tool, and every result is
checked (equal -> equal, three rows -> those three keys).

usage: compare_pg.py PENSTOCK_BIN [ROUNDS] [SCALE]
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading

from benchlib import PGBIN, Measure, Servers, banner, medians, save, url

BIN = sys.argv[1]
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 3
SCALE = int(sys.argv[3]) if len(sys.argv) > 3 else 10
TABLE = "pgbench_accounts"
ENV = dict(os.environ, PATH=f"{PGBIN}:{os.environ['PATH']}")


def psql_cmd(cluster, db, *args):
    return [str(PGBIN / "psql"), "-X", "-q", "-h", "127.0.0.1", "-p", str(cluster.port), "-U",
            "postgres", "-d", db, *args]


def psql(cluster, db, sql):
    return subprocess.run(psql_cmd(cluster, db, "-At", "-v", "ON_ERROR_STOP=1", "-c", sql),
                          check=True, capture_output=True, text=True).stdout


def setup(srv):
    psql(srv.source, "postgres", "CREATE DATABASE src")
    psql(srv.target, "postgres", "CREATE DATABASE dst")
    subprocess.run([str(PGBIN / "pgbench"), "-i", "-s", str(SCALE), "-q", "-h", "127.0.0.1",
                    "-p", str(srv.source.port), "-U", "postgres", "src"], check=True,
                   capture_output=True)
    psql(srv.target, "dst", f"CREATE TABLE {TABLE} (aid int NOT NULL, bid int, abalance int, "
                            "filler char(84))")
    out = subprocess.Popen(psql_cmd(srv.source, "src", "-c", f"COPY {TABLE} TO STDOUT"),
                           stdout=subprocess.PIPE)
    subprocess.run(psql_cmd(srv.target, "dst", "-c", f"COPY {TABLE} FROM STDIN"),
                   stdin=out.stdout, check=True)
    out.stdout.close()
    out.wait()
    psql(srv.target, "dst", f"ALTER TABLE {TABLE} ADD PRIMARY KEY (aid)")
    psql(srv.target, "dst", f"VACUUM ANALYZE {TABLE}")
    psql(srv.source, "src", f"VACUUM ANALYZE {TABLE}")


def make_different(srv):
    n = SCALE * 100000
    psql(srv.target, "dst", f"UPDATE {TABLE} SET abalance = abalance + 1 WHERE aid = {n // 3}; "
                            f"DELETE FROM {TABLE} WHERE aid = {2 * n // 3}; "
                            f"INSERT INTO {TABLE} VALUES ({n + 1}, 1, 0, 'x')")
    return {("different", str(n // 3)), ("missing_in_target", str(2 * n // 3)),
            ("extra_in_target", str(n + 1))}


def run_penstock(srv, expect, work):
    p = subprocess.run([BIN, "compare", "--json", "--source", url(srv.source, "src"),
                        "--target", url(srv.target, "dst"), "--tables", TABLE, "--mode", "full"],
                       capture_output=True, text=True)
    rep = json.loads(p.stdout)
    got = {(d["kind"], d["key"]["aid"]) for d in rep["tables"][0]["differences"]}
    assert p.returncode == (0 if not expect else 1), p.stderr
    assert got == expect, got


def have_pgcopydb_compare():
    p = subprocess.run(["pgcopydb", "compare", "data", "--help"], capture_output=True, text=True,
                       env=ENV)
    return p.returncode == 0 and "unknown command" not in p.stderr + p.stdout


def run_pgcopydb(srv, expect, work):
    d = os.path.join(work, "pgcopydb")
    shutil.rmtree(d, ignore_errors=True)
    p = subprocess.run(["pgcopydb", "compare", "data", "--source", url(srv.source, "src"),
                        "--target", url(srv.target, "dst"), "--dir", d], capture_output=True,
                       text=True, env=ENV)
    # it exits non-zero when the data differs
    assert (p.returncode == 0) == (not expect), p.stderr[-2000:]


def run_floor(srv, expect, work):
    sql = (f"SELECT count(*) || ' ' || md5(string_agg({TABLE}::text, E'\\n' ORDER BY aid)) "
           f"FROM {TABLE}")
    out = {}

    def one(cluster, db):
        out[db] = psql(cluster, db, sql)
    ts = [threading.Thread(target=one, args=a) for a in ((srv.source, "src"), (srv.target, "dst"))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert (out["src"] == out["dst"]) == (not expect)


def main():
    srv = Servers()
    work = tempfile.mkdtemp(prefix="comparebench-")
    results = {}
    try:
        setup(srv)
        peer_name, peer = "pgcopydb compare data", run_pgcopydb
        banner(f"full compare of {TABLE}, scale {SCALE} ({SCALE * 100000:,} rows), {ROUNDS} "
               f"rounds")
        if not have_pgcopydb_compare():
            v = subprocess.run(["pgcopydb", "--version"], capture_output=True, text=True, env=ENV)
            m = re.search(r"pgcopydb version (\S+)", v.stdout + v.stderr)
            print(f"note: pgcopydb {m.group(1) if m else '?'} has no `compare` "
                  "command (added in pgcopydb 0.14); measuring the whole-table digest floor "
                  "instead")
            peer_name, peer = "whole-table digest floor", run_floor
        for case in ("equal", "3 rows differ"):
            expect = make_different(srv) if case != "equal" else set()
            recs = {"penstock": [], peer_name: []}
            for r in range(ROUNDS):
                for name, fn in ([("penstock", run_penstock), (peer_name, peer)] if r % 2 == 0
                                 else [(peer_name, peer), ("penstock", run_penstock)]):
                    with Measure(srv) as m:
                        fn(srv, expect, work)
                    recs[name].append(m.record())
            results[case] = {k: medians(v) for k, v in recs.items()}
            print(f"{case}: " + "; ".join(
                f"{k} " + ", ".join(f"{x['wall']:.2f}" for x in v) + " s" for k, v in recs.items()))
    finally:
        srv.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(f"medians of {ROUNDS}:")
    for case, r in results.items():
        pm, fm = r["penstock"], r[peer_name]
        print(f"  {case:14s} penstock {pm['wall']:.2f} s (CPU s: source {pm['source']:.2f}, "
              f"target {pm['target']:.2f}, penstock {pm['client']:.2f})   {peer_name} "
              f"{fm['wall']:.2f} s (source {fm['source']:.2f}, target {fm['target']:.2f})   "
              f"ratio penstock/peer {pm['wall'] / fm['wall']:.2f}")
    save("compare", {"scale": SCALE, "rounds": ROUNDS, "peer": peer_name, "medians": results})


if __name__ == "__main__":
    main()
