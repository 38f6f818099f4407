"""Many jobs (issue 22, item 3): one `penstock server` running JOBS sync jobs
from one PostgreSQL source to several targets under steady writes, for
MINUTES; what each job costs and whether every job keeps up.

Set-up: a source cluster and a target cluster (throwaway, the test harness's
settings; the source database commits with synchronous_commit = on as in
lag.py), each job its own TABLES tables of ROWS rows (`jNN_a`, `jNN_b`, ...)
selected by `tables.include`. The jobs go round-robin to three kinds of
target: a PostgreSQL database of the target cluster (every PostgreSQL job
shares it, each with its own tables), an SQLite file per job, a JSON-lines
directory per job. The source gets max_replication_slots and max_wal_senders
of 2 x JOBS + 8 (each job's slot, plus the temporary slot a load exports its
snapshot from) and max_connections for the jobs' other sessions.

Measured:
  - the server's VmRSS, Threads and open file descriptors (/proc/PID) with
    no job, with JOBS jobs created, and every second of the steady run
    (median and peak), and so what a job adds;
  - sessions on the source and the target by application_name and backend
    type (pg_stat_activity) every 15 s, walsenders among them;
  - per job, from GET /v1/jobs polled POLL_HZ times a second throughout:
    lag.seconds and lag.bytes (max and the spread over jobs), changes applied
    in the steady window against changes written (throughput per job: min,
    median, max), every state seen (a job that failed or retried is named);
  - the latency of those GET /v1/jobs (p50, p99, max), whole body read, and
    of a GET /healthz every fifth poll: the control, an answer that reads no
    job, which shows what the machine's load alone adds;
  - CPU seconds of the server and of the source's walsenders over the window.
At the end the writers stop, every slot must confirm the source's end, and
every target is compared with its source tables row by row (JSON lines:
the events replayed by key). A difference is reported and fails the run.

usage: many_jobs.py PENSTOCK_BIN [JOBS] [MINUTES] [RATE]
       (env MANY_ROWS: rows per table, 1000; MANY_TABLES: tables per job, 2;
        MANY_POLL_HZ: API polls a second, 10)
"""
import collections
import http.client
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from conftest import Cluster, Database, pg_column_types, pg_rows, sqlite_rows, wait_for  # noqa: E402

BIN = sys.argv[1]
JOBS = int(sys.argv[2]) if len(sys.argv) > 2 else 50
MINUTES = float(sys.argv[3]) if len(sys.argv) > 3 else 10
RATE = int(sys.argv[4]) if len(sys.argv) > 4 else 500
ROWS = int(os.environ.get("MANY_ROWS", "1000"))
TABLES = int(os.environ.get("MANY_TABLES", "2"))
POLL_HZ = float(os.environ.get("MANY_POLL_HZ", "10"))
JOBS_PER_WRITER = 5
TOKEN = "bench-token-0123456789abcdef"
KINDS = ["pg", "sqlite", "jsonl"]


def pct(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100.0 * (len(s) - 1))))] if s else float("nan")


def proc_status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM", "Threads"):
                out[k] = int(v.split()[0])
    out["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
    return out


def cpu_seconds(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except FileNotFoundError:
        return None


def table_names(j):
    return [f"j{j:02d}_{chr(ord('a') + t)}" for t in range(TABLES)]


class Api:
    def __init__(self, port):
        self.port = port

    def call(self, method, path, body=None):
        """-> (status, parsed body, seconds until the whole body was read).
        A new connection per request, as the CLI and a browser make."""
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        t0 = time.monotonic()
        c.request(method, path, body=json.dumps(body) if body is not None else None,
                  headers={"Authorization": f"Bearer {TOKEN}",
                           "Content-Type": "application/json"})
        r = c.getresponse()
        data = r.read()
        took = time.monotonic() - t0
        c.close()
        return r.status, json.loads(data) if data else None, took


class Writer(threading.Thread):
    """Commits transactions into its jobs' tables in turn at a fixed rate:
    an UPDATE of a random row of the first table, an INSERT into each other
    table, and one time in ten a DELETE of the oldest row of the last one."""

    def __init__(self, src, jobs, rate, seed):
        super().__init__(daemon=True)
        self.src, self.jobs, self.rate = src, jobs, rate
        self.rand = random.Random(seed)
        self.halt = threading.Event()
        self.txns = 0
        self.changes = collections.Counter()   # job -> changes committed
        self.next_id = {j: ROWS + 1 for j in jobs}
        self.error = None

    def run(self):
        try:
            c = self.src.cluster.connect(self.src.name)   # autocommit: BEGIN ... COMMIT below
            cur = c.cursor()
            t_next = time.monotonic()
            i = 0
            while not self.halt.is_set():
                j = self.jobs[i % len(self.jobs)]
                i += 1
                names = table_names(j)
                # one round trip a transaction: the statements go as one
                # simple-protocol message, so the writers are not what limits
                # the rate on a busy machine
                stmts = [f"UPDATE {names[0]} SET v = v + 1, pad = md5(random()::text) "
                         f"WHERE id = {self.rand.randrange(1, ROWS + 1)}"]
                for t in names[1:]:
                    stmts.append(f"INSERT INTO {t} (id, v, pad) VALUES ({self.next_id[j]}, "
                                 f"{self.txns}, md5('{self.next_id[j]}'))")
                self.next_id[j] += 1
                if len(names) > 1 and self.rand.random() < 0.1:
                    # the table keeps at least ROWS rows, so this deletes one
                    stmts.append(f"DELETE FROM {names[-1]} WHERE id = "
                                 f"(SELECT min(id) FROM {names[-1]})")
                cur.execute("BEGIN; " + "; ".join(stmts) + "; COMMIT")
                self.txns += 1
                self.changes[j] += len(stmts)
                t_next += 1.0 / self.rate
                pause = t_next - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
            c.close()
        except Exception as e:   # reported by stop()
            self.error = e

    def stop(self):
        self.halt.set()
        self.join(60)
        if self.error:
            raise self.error


def jsonl_state(directory, names):
    """The rows of each table after replaying every complete event by key."""
    rows = {t: {} for t in names}
    for f in sorted(os.listdir(directory)):
        if not f.endswith(".jsonl"):
            continue
        with open(os.path.join(directory, f)) as fh:
            text = fh.read()
        for line in text[:text.rfind("\n") + 1].splitlines():
            e = json.loads(line)
            t = e["source"]["table"]
            if t not in rows:
                continue
            if e["op"] in ("r", "c", "u"):
                if e["op"] == "u" and e.get("before"):
                    rows[t].pop(e["before"]["id"], None)
                rows[t][e["after"]["id"]] = e["after"]
            elif e["op"] == "d":
                rows[t].pop(e["before"]["id"], None)
            elif e["op"] == "t":
                rows[t].clear()
    return {t: sorted((str(r["id"]), str(r["v"]), r["pad"]) for r in rows[t].values())
            for t in names}


def main():
    t_begin = time.monotonic()
    work = tempfile.mkdtemp(prefix="manybench-")
    os.chmod(work, 0o755)
    slots = 2 * JOBS + 8
    src_cluster = tgt_cluster = server = None
    writers = []
    report = []
    ok = False

    def say(text=""):
        print(text, flush=True)
        report.append(text)
    try:
        os.makedirs(f"{work}/src")
        os.makedirs(f"{work}/tgt")
        os.chmod(f"{work}/src", 0o755)
        os.chmod(f"{work}/tgt", 0o755)
        # PostgreSQL's default durability, as users deploy (DURABILITY=fast:
        # the labelled non-durable configuration, as in bench/benchlib.py)
        durable = os.environ.get("DURABILITY", "durable") != "fast"
        say(f"servers: {'default durability (fsync, synchronous_commit, full_page_writes on)' if durable else 'DURABILITY=fast: fsync, synchronous_commit, full_page_writes off'}")
        src_cluster = Cluster(f"{work}/src", durable=durable, settings=[
            f"max_replication_slots={slots}", f"max_wal_senders={slots}",
            f"max_connections={4 * JOBS + 50}"])
        tgt_cluster = Cluster(f"{work}/tgt", durable=durable,
                              settings=[f"max_connections={4 * JOBS + 50}"])
        for cl in (src_cluster, tgt_cluster):
            c = cl.connect()
            c.cursor().execute("CREATE DATABASE " + ("src" if cl is src_cluster else "dst"))
            c.close()
        src = Database(src_cluster, "src")
        dst = Database(tgt_cluster, "dst")
        src.execute("ALTER DATABASE src SET synchronous_commit = on")
        for j in range(JOBS):
            for t in table_names(j):
                src.execute(f"CREATE TABLE {t} (id int PRIMARY KEY, v int NOT NULL, pad text)")
                src.execute(f"INSERT INTO {t} SELECT g, g, md5(g::text) "
                            f"FROM generate_series(1, {ROWS}) g")
        src_url = f"postgresql://postgres@127.0.0.1:{src_cluster.port}/src"
        kind = {j: KINDS[j % len(KINDS)] for j in range(JOBS)}
        target = {}
        for j in range(JOBS):
            target[j] = {"pg": f"postgresql://postgres@127.0.0.1:{tgt_cluster.port}/dst",
                         "sqlite": f"sqlite://{work}/j{j:02d}.db",
                         "jsonl": f"jsonl://{work}/j{j:02d}-events"}[kind[j]]

        # --- the server, empty ---
        port = int(subprocess.check_output([os.path.join(ROOT, "scripts", "pgtmp.sh"),
                                            "freeport"]).decode())
        env = dict(os.environ, PENSTOCK_API_TOKEN=TOKEN)
        server = subprocess.Popen([BIN, "server", "--listen", f"127.0.0.1:{port}",
                                   "--state-dir", f"{work}/state"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=open(f"{work}/server.log", "w"))
        api = Api(port)

        def answers():
            assert server.poll() is None, open(f"{work}/server.log").read()
            try:
                return api.call("GET", "/healthz")[0] == 200
            except OSError:
                return False
        wait_for(answers, 30, what="the server to answer")

        def settle_sample(seconds=5):
            got = []
            for _ in range(seconds):
                got.append(proc_status(server.pid))
                time.sleep(1)
            return {k: statistics.median(g[k] for g in got) for k in got[0]}
        empty = settle_sample()
        for j in range(JOBS):
            spec = {"name": f"j{j:02d}", "type": "sync", "source": {"url": src_url},
                    "target": {"url": target[j]},
                    "tables": {"include": [f"public.j{j:02d}_*"]}}
            st, body, _ = api.call("POST", "/v1/jobs", spec)
            assert st == 201, body
        created = settle_sample()
        t_start = time.monotonic()
        for j in range(JOBS):
            st, body, _ = api.call("POST", f"/v1/jobs/j{j:02d}/start")
            assert st == 202, body

        def all_streaming():
            st, body, _ = api.call("GET", "/v1/jobs")
            bad = [x for x in body["jobs"] if x["state"] in ("failed_permanently", "stopped")]
            assert not bad, f"jobs stopped before streaming: " \
                            f"{[(x['name'], x['state'], x['last_error']) for x in bad]}"
            return all(x["phase"] == "streaming" for x in body["jobs"])
        wait_for(all_streaming, 600, 0.5, what=f"all {JOBS} jobs to stream")
        startup = time.monotonic() - t_start
        streaming_idle = settle_sample()

        # --- the steady run ---
        n_writers = max(1, (JOBS + JOBS_PER_WRITER - 1) // JOBS_PER_WRITER)
        for w in range(n_writers):
            mine = [j for j in range(JOBS) if j % n_writers == w]
            writers.append(Writer(src, mine, RATE / n_writers, seed=w + 1))
        halt = threading.Event()
        latencies, health_lat, api_errors = [], [], []
        per_job = {f"j{j:02d}": {"lag_s": [], "lag_b": [], "states": collections.Counter(),
                                 "applied": []} for j in range(JOBS)}
        resources, sessions, loads = [], [], []

        def poller():
            period = 1.0 / POLL_HZ
            t_next = time.monotonic()
            k = 0
            while not halt.is_set():
                k += 1
                if k % 5 == 0:
                    # the control: an answer that reads no job, so what the
                    # machine's load alone adds to a request shows apart
                    try:
                        st, _, took = api.call("GET", "/healthz")
                        if st == 200:
                            health_lat.append(took)
                    except OSError as e:
                        api_errors.append(repr(e))
                try:
                    st, body, took = api.call("GET", "/v1/jobs")
                    if st != 200:
                        api_errors.append(st)
                    else:
                        latencies.append(took)
                        now = time.monotonic()
                        for x in body["jobs"]:
                            d = per_job[x["name"]]
                            d["states"][x["state"]] += 1
                            d["lag_s"].append((now, x["lag"]["seconds"] or 0.0))
                            d["lag_b"].append(x["lag"]["bytes"] or 0)
                            d["applied"].append((now, x["counters"]["changes_applied"] or 0))
                except OSError as e:
                    api_errors.append(repr(e))
                t_next += period
                time.sleep(max(0.0, t_next - time.monotonic()))

        def sampler():
            i = 0
            while not halt.is_set():
                resources.append(proc_status(server.pid))
                if i % 15 == 0:
                    snap = {}
                    for side, cl, db in (("source", src_cluster, "src"),
                                         ("target", tgt_cluster, "dst")):
                        c = cl.connect(db)
                        cur = c.cursor()
                        # penstock's sessions, the job's name taken out of
                        # application_name ("penstock_j07", "penstock sink j07")
                        cur.execute("SELECT regexp_replace(application_name, 'j[0-9]+$', "
                                    "'<job>'), backend_type, count(*) FROM pg_stat_activity "
                                    "WHERE application_name LIKE 'penstock%' GROUP BY 1, 2")
                        snap[side] = {(a, b): n for a, b, n in cur.fetchall()}
                        c.close()
                    sessions.append(snap)
                    with open("/proc/loadavg") as f:
                        loads.append(float(f.read().split()[0]))
                i += 1
                halt.wait(1.0)

        def walsender_pids():
            r = src.execute("SELECT pid FROM pg_stat_replication")
            return [p for (p,) in r]
        ws_pids = walsender_pids()
        cpu0 = (cpu_seconds(server.pid), {p: cpu_seconds(p) for p in ws_pids})
        threads = [threading.Thread(target=poller, daemon=True),
                   threading.Thread(target=sampler, daemon=True)]
        for th in threads:
            th.start()
        print(f"{JOBS} jobs streaming after {startup:.1f} s; writing {RATE} tx/s with "
              f"{n_writers} writers for {MINUTES:g} min", flush=True)
        t_w0 = time.monotonic()
        for w in writers:
            w.start()
        deadline = t_w0 + MINUTES * 60
        minute = 1
        while time.monotonic() < deadline:
            time.sleep(min(5.0, max(0.0, deadline - time.monotonic())))
            for w in writers:
                if w.error:
                    raise w.error
            if server.poll() is not None:
                raise AssertionError(f"the server exited with {server.returncode}")
            if time.monotonic() - t_w0 >= minute * 60:
                lags = [max((v for t, v in d["lag_s"] if t >= t_w0 + (minute - 1) * 60), default=0)
                        for d in per_job.values()]
                say(f"  minute {minute}: max lag {max(lags):.2f} s, RSS "
                      f"{resources[-1]['VmRSS'] / 1024:.0f} MiB, "
                      f"{sum(w.txns for w in writers) / (time.monotonic() - t_w0):.0f} tx/s, "
                      f"GET /v1/jobs p99 so far {pct(latencies, 99) * 1000:.0f} ms")
                minute += 1
        for w in writers:
            w.stop()
        t_w1 = time.monotonic()
        window = t_w1 - t_w0
        cpu1 = (cpu_seconds(server.pid), {p: cpu_seconds(p) for p in ws_pids})
        halt.set()
        for th in threads:
            th.join(30)

        # --- catch up, then compare ---
        end = src.value("SELECT pg_current_wal_lsn()::text")

        def caught_up():
            return src.value("SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE "
                             "'penstock_j%%' AND confirmed_flush_lsn >= %s::pg_lsn", (end,)) == JOBS
        t_c0 = time.monotonic()
        wait_for(caught_up, 600, 0.2, what="every slot to confirm the source's end")
        catchup = time.monotonic() - t_c0
        st, final, _ = api.call("GET", "/v1/jobs")
        final = {x["name"]: x for x in final["jobs"]}
        differ = []

        def compare(j):
            names = table_names(j)
            if kind[j] == "jsonl":
                state = jsonl_state(f"{work}/j{j:02d}-events", names)
            for t in names:
                want = pg_rows(src, f"public.{t}")
                if kind[j] == "pg":
                    got = pg_rows(dst, f"public.{t}")
                elif kind[j] == "sqlite":
                    got = sqlite_rows(f"{work}/j{j:02d}.db", f"public.{t}",
                                      pg_column_types(src, f"public.{t}"), want)
                else:
                    got = state[t]
                if sorted(want) != sorted(got):
                    have, seen = collections.Counter(want), collections.Counter(got)
                    return (t, len(want), len(got), list((have - seen).elements())[:3],
                            list((seen - have).elements())[:3])
            return None
        rows_compared = 0
        for j in range(JOBS):
            d = compare(j)
            if d:
                differ.append((f"j{j:02d}", kind[j], d))
            rows_compared += sum(src.value(f"SELECT count(*) FROM {t}") for t in table_names(j))

        # --- the report ---
        steady = [r for r in resources]
        rss = [r["VmRSS"] / 1024 for r in steady]
        thr = [r["Threads"] for r in steady]
        fds = [r["fds"] for r in steady]
        written = collections.Counter()
        for w in writers:
            written.update({f"j{j:02d}": n for j, n in w.changes.items()})
        txns = sum(w.txns for w in writers)
        throughput, max_lag, max_lag_b, abnormal = {}, {}, {}, {}
        for name, d in per_job.items():
            a = [(t, v) for t, v in d["applied"] if t_w0 <= t <= t_w1]
            throughput[name] = (a[-1][1] - a[0][1]) / (a[-1][0] - a[0][0]) if len(a) > 1 else 0.0
            max_lag[name] = max((v for _, v in d["lag_s"]), default=0.0)
            max_lag_b[name] = max(d["lag_b"], default=0)
            if set(d["states"]) != {"running"} or final[name].get("errors") \
                    or final[name]["attempts"]:
                abnormal[name] = (dict(d["states"]), final[name].get("errors"),
                                  final[name]["attempts"])
        ratio = {n: throughput[n] / (written[n] / window) for n in throughput if written[n]}
        loadavg = open("/proc/loadavg").read().split()[:3]
        say()
        say(f"== many jobs: {JOBS} sync jobs in one penstock server, {MINUTES:g} min of writes")
        say(f"targets: {sum(1 for k in kind.values() if k == 'pg')} PostgreSQL (one database of a "
            f"second cluster), {sum(1 for k in kind.values() if k == 'sqlite')} SQLite files, "
            f"{sum(1 for k in kind.values() if k == 'jsonl')} JSON-lines directories; "
            f"{TABLES} tables x {ROWS:,} rows per job")
        say(f"machine: {os.cpu_count()} CPUs, shared; 1-min load average during the run median "
            f"{statistics.median(loads):.1f}, max {max(loads):.1f}, at the end {' '.join(loadavg)}")
        say(f"all {JOBS} jobs created, started, loaded and streaming in {startup:.1f} s")
        say(f"writes: {txns:,} transactions in {window:.0f} s = {txns / window:.0f} tx/s "
            f"(asked {RATE}), {sum(written.values()):,} changes, {n_writers} writer connections")
        say()
        say(f"server VmRSS: no job {empty['VmRSS'] / 1024:.1f} MiB; {JOBS} jobs created "
            f"{created['VmRSS'] / 1024:.1f} MiB; streaming, idle {streaming_idle['VmRSS'] / 1024:.1f}"
            f" MiB; under writes median {statistics.median(rss):.1f} MiB, peak {max(rss):.1f} MiB "
            f"(VmHWM {proc_status(server.pid)['VmHWM'] / 1024:.1f} MiB)")
        say(f"  per job: {(statistics.median(rss) - empty['VmRSS'] / 1024) / JOBS:.2f} MiB "
            f"(median under writes minus no job, / {JOBS}); peak "
            f"{(max(rss) - empty['VmRSS'] / 1024) / JOBS:.2f} MiB")
        say(f"server threads: no job {empty['Threads']:.0f}; {JOBS} created "
            f"{created['Threads']:.0f}; under writes median {statistics.median(thr):.0f}, max "
            f"{max(thr)} -> {(statistics.median(thr) - empty['Threads']) / JOBS:.2f} per job")
        say(f"server file descriptors: no job {empty['fds']:.0f}; under writes median "
            f"{statistics.median(fds):.0f}, max {max(fds)} -> "
            f"{(statistics.median(fds) - empty['fds']) / JOBS:.2f} per job")
        say(f"CPU over the window: server {cpu1[0] - cpu0[0]:.1f} s "
            f"({(cpu1[0] - cpu0[0]) / window * 100:.0f} % of one core); the source's "
            f"{len(ws_pids)} walsenders "
            f"{sum((cpu1[1][p] or 0) - (cpu0[1][p] or 0) for p in ws_pids):.1f} s")
        for side in ("source", "target"):
            keys = sorted({k for s in sessions for k in s[side]})
            parts = []
            for k in keys:
                counts = [s[side].get(k, 0) for s in sessions]
                parts.append(f"{k[1]} '{k[0]}': median {statistics.median(counts):g}, "
                             f"max {max(counts)}")
            total = [sum(s[side].values()) for s in sessions]
            say(f"{side} sessions of penstock ({len(sessions)} samples), total median "
                f"{statistics.median(total):g} = {statistics.median(total) / JOBS:.2f} per job:")
            for p in parts:
                say(f"    {p}")
        say()
        tp = sorted(throughput.values())
        say(f"per-job throughput in the window (changes applied/s): min {tp[0]:.2f}, median "
            f"{statistics.median(tp):.2f}, max {tp[-1]:.2f}; applied / written: min "
            f"{min(ratio.values()):.3f}, max {max(ratio.values()):.3f}")
        lg = sorted(max_lag.values())
        all_lag = [v for d in per_job.values() for _, v in d["lag_s"]]
        say(f"per-job lag.seconds: max over the run per job: min {lg[0]:.2f}, median "
            f"{statistics.median(lg):.2f}, max {lg[-1]:.2f} s (job "
            f"{max(max_lag, key=max_lag.get)}); all samples p50 {pct(all_lag, 50):.3f}, "
            f"p99 {pct(all_lag, 99):.3f} s; max lag.bytes {max(max_lag_b.values()):,}")
        say(f"catch-up after the writes stopped: {catchup:.1f} s")
        say(f"GET /v1/jobs ({len(latencies)} calls, {POLL_HZ:g}/s, a new connection each): "
            f"p50 {pct(latencies, 50) * 1000:.1f} ms, p99 {pct(latencies, 99) * 1000:.1f} ms, max "
            f"{max(latencies) * 1000:.1f} ms; errors {len(api_errors)} {api_errors[:3]}")
        say(f"GET /healthz, the control ({len(health_lat)} calls, between them): p50 "
            f"{pct(health_lat, 50) * 1000:.1f} ms, p99 {pct(health_lat, 99) * 1000:.1f} ms, max "
            f"{max(health_lat) * 1000:.1f} ms")
        say(f"jobs not always running, or with errors: {abnormal if abnormal else 'none'}")
        say(f"compared {JOBS} jobs' targets with the source, {rows_compared:,} rows: "
            + ("every target equals its source" if not differ else f"DIFFERENCES {differ}"))
        say(f"(whole benchmark {time.monotonic() - t_begin:.0f} s)")
        ok = not differ
        with open(os.path.join(work, "report.txt"), "w") as f:
            f.write("\n".join(report) + "\n")
        if differ:
            raise AssertionError(f"targets differ from the source: {differ}")
    finally:
        for w in writers:
            w.halt.set()
        if server and server.poll() is None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(120)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        for cl in (src_cluster, tgt_cluster):
            if cl:
                cl.stop()
        shutil.rmtree(f"{work}/src", ignore_errors=True)   # clusters are big; leave none
        shutil.rmtree(f"{work}/tgt", ignore_errors=True)
        if ok:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept {work} (server.log, targets)", file=sys.stderr)


if __name__ == "__main__":
    main()
