"""The issue's table (issue 19) from the results the benchmarks wrote to
$BENCH_RESULTS (bench/benchlib.py save): every goal with the figure measured
for it, in the same run, and whether it is met; then the CPU seconds behind
each figure. Markdown, for docs/benchmarks.md. A benchmark that did not run
(ONLY=...) shows as such.

usage: summary.py RESULTS_DIR
"""
import json
import os
import sys

D = sys.argv[1]


def load(name):
    p = os.path.join(D, f"{name}.json")
    if not os.path.exists(p):
        return None
    with open(p) as f:
        return json.load(f)


def met(ok):
    return "**yes**" if ok else "no"


def cpu(m):
    return (f"walsender {m['walsender']:.2f}, target backends {m['target_backends']:.2f} "
            f"(server {m['target']:.2f}), penstock {m['client']:.2f}")


def main():
    res = {n: load(n) for n in ("load", "load_many", "backlog", "lag", "bigtxn")}
    any_res = next((r for r in res.values() if r), None)
    if not any_res:
        print("no results")
        return
    m = any_res["machine"]
    dur = {r["durability"] for r in res.values() if r}
    print(f"Machine: {m['cpu']}, {m['cores']} cores, {m['mem_gib']} GiB, kernel {m['kernel']}, "
          f"{m['postgres']}; load average at the end {m['load_average'][0]:.1f}.")
    print("Servers: source and target are separate clusters, " +
          ("PostgreSQL's default durability (fsync, synchronous_commit, full_page_writes on)."
           if dur == {"durable"} else
           f"durability {', '.join(sorted(dur))} (NOT the configuration the goals are judged on)."))
    print()
    print("| # | work | penstock | peer | ratio | goal | met |")
    print("|---|---|---|---|---|---|---|")
    cpus = []

    r = res["load"]
    if r:
        md = r["medians"]
        p, c, d = md["penstock"], md["pgcopydb clone"], md["pg_dump | psql"]
        f = md["binary COPY pipe (floor, no indexes)"]
        ratio = p["wall"] / c["wall"]
        print(f"| 1 | load `pgbench -i -s {r['scale']}` → PostgreSQL, {r['jobs']} jobs | "
              f"{p['wall']:.2f} s | pgcopydb clone {c['wall']:.2f} s | **{ratio:.2f}** | ≤ 0.6 | "
              f"{met(ratio <= 0.6)} |")
        print(f"| | | | pg_dump \\| psql {d['wall']:.2f} s | {p['wall'] / d['wall']:.2f} | — | |")
        print(f"| | | | binary COPY floor (no indexes) {f['wall']:.2f} s | "
              f"{p['wall'] / f['wall']:.2f} | — | |")
        for k, v in md.items():
            cpus.append(("1", k, f"source {v['source']:.2f}, target {v['target']:.2f}, "
                                  f"client {v['client']:.2f}"))
    else:
        print("| 1 | load pgbench -s 30 | not run | | | ≤ 0.6 | |")

    r = res["load_many"]
    if r:
        md = r["medians"]
        p, c, d = md["penstock"], md["pgcopydb clone"], md["pg_dump | psql"]
        ratio = p["wall"] / c["wall"]
        print(f"| 1b | load {r['tables']:,} tables × {r['rows']:,} rows (keys, indexes, foreign "
              f"keys), {r['jobs']} jobs | {p['wall']:.2f} s | pgcopydb clone {c['wall']:.2f} s | "
              f"**{ratio:.2f}** | ≤ 0.6 | {met(ratio <= 0.6)} |")
        print(f"| | | | pg_dump \\| psql {d['wall']:.2f} s | {p['wall'] / d['wall']:.2f} | — | |")
        for k, v in md.items():
            cpus.append(("1b", k, f"source {v['source']:.2f}, target {v['target']:.2f}, "
                                   f"client {v['client']:.2f}"))
    else:
        print("| 1b | load 1,000 tables × 2,000 rows | not run | | | ≤ 0.6 | |")

    r = res["backlog"]
    if r:
        md = r["medians"]
        p, s, fl = md["penstock -> pg"], md["subscription"], md["pg_recvlogical (floor)"]
        r1, r2 = p["wall"] / s["wall"], p["wall"] / fl["wall"]
        n = r["txns"]
        print(f"| 2 | backlog of {n:,} pgbench txns → PostgreSQL | {p['wall']:.2f} s "
              f"({n / p['wall']:,.0f} txn/s) | CREATE SUBSCRIPTION {s['wall']:.2f} s | "
              f"**{r1:.2f}** | ≤ 0.75 | {met(r1 <= 0.75)} |")
        print(f"| | | | pg_recvlogical floor {fl['wall']:.2f} s | **{r2:.2f}** | ≤ 1.15 | "
              f"{met(r2 <= 1.15)} |")
        for k, v in md.items():
            cpus.append(("2, 5", k, cpu(v) if k.startswith("penstock") else
                         cpu(v).replace("penstock", "client")))
    else:
        print("| 2 | backlog of 100,000 pgbench txns | not run | | | ≤ 0.75, ≤ 1.15 | |")

    r = res["lag"]
    if r:
        # pgbench -R paces by a Poisson schedule: within 2 % of the rate is the rate
        reached = r["tps"] >= 0.98 * r["rate"]
        ok = r["p99_ms"] < 250 and reached
        print(f"| 3 | pgbench -R {r['rate']:,} for {r['seconds']} s, scale {r.get('scale', 1)} "
              f"({r['tps']:,.0f} tps achieved) | p99 lag **{r['p99_ms']:.0f} ms** (p50 "
              f"{r['p50_ms']:.0f}, max {r['max_ms']:.0f}) | — | — | p99 < 250 ms | "
              f"{met(ok) if reached else 'no: the source did not reach the rate'} |")
        if "alone_tps" in r:
            a = r["alone_cpu"]
            print(f"| | the same pgbench alone, nothing decoding | {r['alone_tps']:,.0f} tps | "
                  f"— | — | — | CPU s: source {a['source']:.2f}, pgbench {a['client']:.2f} |")
        cpus.append(("3", "penstock", cpu(r["cpu"])))
    else:
        print("| 3 | pgbench -R 2000 for 60 s | not run | | | p99 < 250 ms | |")

    r = res["bigtxn"]
    if r:
        mib = r["rss_kib"] / 1024
        print(f"| 4 | one transaction of {r['rows']:,} rows × 200 B | peak RSS **{mib:.0f} MiB**, "
              f"completed in {r['applied_s']:.1f} s ({r['rows'] / r['applied_s']:,.0f} rows/s) | "
              f"— | — | < 64 MiB, completes | {met(mib < 64 and r['completed'])} |")
        cpus.append(("4", "penstock", cpu(r["cpu"])))
    else:
        print("| 4 | one transaction of 5M rows | not run | | | < 64 MiB | |")

    r = res["backlog"]
    if r:
        md = r["medians"]
        fl = md["pg_recvlogical (floor)"]["wall"]
        changes = r["txns"] * 4
        for k, name in (("penstock -> sqlite", "SQLite"), ("penstock -> jsonl", "JSON lines")):
            w = md[k]["wall"]
            print(f"| 5 | the backlog of #2 → {name} | {w:.2f} s ({changes / w:,.0f} changes/s) | "
                  f"pg_recvlogical floor {fl:.2f} s | **{w / fl:.2f}** | ≤ 1.0 | "
                  f"{met(w / fl <= 1.0)} |")
    else:
        print("| 5 | the backlog → SQLite, JSON lines | not run | | | ≤ 1.0 | |")

    if cpus:
        print()
        print("CPU seconds (medians) behind each figure: the source's walsender (and the whole "
              "source server), the target's backends (and the whole target server), the tool:")
        print()
        print("| # | who | CPU seconds |")
        print("|---|---|---|")
        for n, who, line in cpus:
            print(f"| {n} | {who.replace('|', chr(92) + '|')} | {line} |")


if __name__ == "__main__":
    main()
