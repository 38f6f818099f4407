#!/usr/bin/env python3
"""`make chaos`: a randomized fault campaign against a running penstock server
(a campaign, not a test: docs/chaos.md).

A source and a target PostgreSQL cluster (scripts/pgtmp.sh), a MariaDB 10.11
server (tests/integration/mariadb.py), a `penstock server` with four sync jobs
from the source into PostgreSQL, MariaDB, SQLite and JSON lines, pgbench plus
a type-zoo writer on the source, and a loopback TCP proxy (proxy.py) between
penstock and each database server. For CHAOS_MINUTES (default 20) a seeded
schedule (CHAOS_SEED replays it) injects: kill -9 of the penstock server then
a restart, crash-restart of the source or the PostgreSQL target (pg_ctl -m
immediate) or of MariaDB (kill -9 of mariadbd, then started again on its data
directory), and network faults through a proxy (drop every connection, stall,
reset the busiest connection, hold one direction). The jobs
recover by the server's own retries; a job that lands in failed_permanently is
recovered with `recover` (retry, then resync) and that is a finding. At the
end the writers stop, the jobs catch up, and every target is compared with
the source row by row (JSON lines: replayed, and checked against a witness
slot that decoded every change on the source), then a report is printed.

Environment: CHAOS_MINUTES, CHAOS_SEED, CHAOS_DIR (kept after the run when
set; else a temporary directory removed on success), CHAOS_PGBENCH_TPS
(default 40), CHAOS_ZOO_TPS (default 15), PENSTOCK_BIN.
"""
import collections
import json
import os
import pathlib
import random
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[0] / "integration"))
sys.path.insert(0, str(HERE))

import psycopg2  # noqa: E402

from conftest import (BIN, PGBIN, PGTMP, pg_column_types, pg_rows,  # noqa: E402
                      sqlite_rows)
from mariadb import MariaDB  # noqa: E402
from mysql_target import _comparable, _select_list, maria_text  # noqa: E402
from proxy import ProxyLoop  # noqa: E402
from test_stream import TYPE_ZOO  # noqa: E402

T0 = time.monotonic()
TOKEN = "chaos-token-" + uuid.uuid4().hex
DB = "chaos"
TABLES = ["public.pgbench_accounts", "public.pgbench_branches", "public.pgbench_tellers",
          "public.pgbench_history", "public.zoo"]
JOBS = ["to_pg", "to_mariadb", "to_sqlite", "to_jsonl"]
RECOVERY_TIMEOUT = 180.0


def log(msg):
    print(f"[{time.monotonic() - T0:8.1f}s] {msg}", flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def lsn_int(text):
    if not text:
        return 0
    hi, lo = text.split("/")
    return (int(hi, 16) << 32) | int(lo, 16)


def as_pg(args):
    return (["runuser", "-u", "postgres", "--"] if os.getuid() == 0 else []) + args


# --- PostgreSQL servers that can crash ------------------------------------------

class PgServer:
    def __init__(self, base, name):
        self.name = name
        self.dir = os.path.join(base, name)
        self.port = free_port()
        subprocess.run([str(PGTMP), "start", self.dir, str(self.port)], check=True)
        # pg_ctl start takes the options again: those the first start used
        argv = shlex.split(pathlib.Path(self.dir, "data", "postmaster.opts").read_text())
        i = argv.index("-D") if "-D" in argv else argv.index('"-D"')
        self.opts = shlex.join(argv[1:i] + argv[i + 2:])
        self.up = True

    def connect(self, dbname=DB):
        c = psycopg2.connect(host="127.0.0.1", port=self.port, dbname=dbname, user="postgres",
                             connect_timeout=10)
        c.autocommit = True
        return c

    def value(self, sql, params=None):
        c = self.connect()
        try:
            with c.cursor() as cur:
                cur.execute(sql, params)
                return cur.fetchone()[0]
        finally:
            c.close()

    def crash(self):
        self.up = False
        subprocess.run(as_pg([str(PGBIN / "pg_ctl"), "-D", f"{self.dir}/data", "-m", "immediate",
                              "-w", "stop"]), check=True, stdout=subprocess.DEVNULL)

    def start(self):
        subprocess.run(as_pg([str(PGBIN / "pg_ctl"), "-D", f"{self.dir}/data", "-l",
                              f"{self.dir}/server.log", "-w", "-t", "120", "-o", self.opts,
                              "start"]), check=True, stdout=subprocess.DEVNULL)
        self.up = True

    def stop(self):
        subprocess.run([str(PGTMP), "stop", self.dir], check=False)


# --- the penstock server -----------------------------------------------------

class PenstockServer:
    def __init__(self, base):
        self.state_dir = pathlib.Path(base, "state")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = pathlib.Path(base, "penstock-server.log")
        self.env = dict(os.environ, PENSTOCK_API_TOKEN=TOKEN)
        self.proc = None
        self.starts = 0

    def start(self):
        self.starts += 1
        self.state_dir.mkdir(exist_ok=True)
        with open(self.log, "a") as f:
            f.write(f"\n===== chaos: start {self.starts} at {time.monotonic() - T0:.1f}s\n")
        self.proc = subprocess.Popen(
            [BIN, "server", "--listen", f"127.0.0.1:{self.port}", "--state-dir", str(self.state_dir)],
            env=self.env, stdout=subprocess.DEVNULL, stderr=open(self.log, "a"))
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"penstock server exited with {self.proc.returncode}; see {self.log}")
            try:
                if self.call("GET", "/healthz", timeout=5)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("penstock server did not answer /healthz in 120 s")

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(120)
            except subprocess.TimeoutExpired:
                self.kill()

    def call(self, method, path, body=None, timeout=60):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {TOKEN}")
        req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                status, text = r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            status, text = e.code, e.read().decode()
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text

    def jobs(self):
        """{name: job} or None while the server does not answer."""
        try:
            status, reply = self.call("GET", "/v1/jobs", timeout=10)
        except OSError:
            return None
        if status != 200:
            return None
        return {j["name"]: j for j in reply["jobs"]}

    def events(self, name):
        out, after = [], 0
        while True:
            status, reply = self.call("GET", f"/v1/jobs/{name}/events?after={after}&limit=10000")
            batch = reply["events"]
            out += batch
            if len(batch) < 10000:
                return out
            after = batch[-1]["seq"]


# --- writers on the source ---------------------------------------------------

class Pgbench(threading.Thread):
    """pgbench at a fixed rate, started again whenever it ends (a source
    crash aborts its clients)."""

    def __init__(self, source, tps):
        super().__init__(daemon=True)
        self.source, self.tps = source, tps
        self.halt = threading.Event()
        self.proc = None
        self.runs = 0

    def run(self):
        while not self.halt.is_set():
            self.runs += 1
            self.proc = subprocess.Popen(
                [str(PGBIN / "pgbench"), "-n", "-h", "127.0.0.1", "-p", str(self.source.port),
                 "-U", "postgres", "-c", "2", "-j", "1", "-R", str(self.tps), "-T", "100000", DB],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.proc.wait()
            # wait for the source to take connections again
            while not self.halt.is_set():
                try:
                    self.source.connect().close()
                    break
                except psycopg2.Error:
                    self.halt.wait(0.2)

    def stop(self):
        # SIGTERM, not SIGINT: a campaign started in the background by a
        # shell (`make chaos &`, nohup) inherits SIGINT ignored, and so does
        # pgbench, which then runs on and the campaign never reaches its
        # comparison (it happened: 25 minutes of faults, no verdict).
        self.halt.set()
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.join(60)


class ZooWriter(threading.Thread):
    """Transactions of inserts, updates (some of the key, most leaving a
    large TOASTed text unchanged) and deletes of rows holding many types."""

    def __init__(self, source, seed, tps):
        super().__init__(daemon=True)
        self.source, self.tps = source, tps
        self.r = random.Random(seed)
        self.halt = threading.Event()
        self.next_id = 1000
        self.ids = []
        self.txns = 0
        self.errors = 0

    def value(self, col):
        r = self.r
        if r.random() < 0.08 and col not in ("id",):
            return None
        if col == "i2":
            return r.randint(-32768, 32767)
        if col == "i8":
            return r.randint(-2 ** 63, 2 ** 63 - 1)
        if col == "f4":
            return r.choice([f"{r.uniform(-1000, 1000):.3f}", "Infinity", "-0", "1.5e-07"])
        if col == "f8":
            return r.choice([repr(r.uniform(-1e9, 1e9)), f"{r.uniform(1, 10)!r}e{r.randint(-300, 300)}"])
        if col == "fnan":
            return r.choice(["NaN", "Infinity", "-Infinity", repr(r.random())])
        if col == "num":
            return r.choice(["NaN", f"{r.randint(-10 ** 30, 10 ** 30)}.{r.randint(0, 10 ** 12):012d}",
                             str(r.randint(-10 ** 6, 10 ** 6))])
        if col == "b":
            return r.random() < 0.5
        if col in ("ts", "tstz"):
            s = (f"{r.randint(1900, 2100):04d}-{r.randint(1, 12):02d}-{r.randint(1, 28):02d} "
                 f"{r.randint(0, 23):02d}:{r.randint(0, 59):02d}:{r.randint(0, 59):02d}.{r.randint(0, 999999):06d}")
            return s + (r.choice(["+00", "+05:30", "-08"]) if col == "tstz" else "")
        if col == "d":
            return f"{r.randint(1, 9999):04d}-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}"
        if col == "t":
            return f"{r.randint(0, 23):02d}:{r.randint(0, 59):02d}:{r.randint(0, 59):02d}.{r.randint(0, 999999)}"
        if col == "iv":
            return f"{r.randint(-400, 400)} days {r.randint(0, 99)}:{r.randint(0, 59):02d}:{r.randint(0, 59):02d}.{r.randint(0, 999)}"
        if col == "by":
            return psycopg2.Binary(bytes(r.getrandbits(8) for _ in range(r.randint(0, 40))))
        if col in ("js", "jb"):
            return json.dumps({"k": r.randint(0, 100), "s": self.text(8), "l": [1, None, r.random()]})
        if col == "arr":
            return [r.randint(-1000, 1000)] + [r.choice([None, r.randint(0, 9)]) for _ in range(r.randint(0, 4))]
        if col == "tarr":
            return [self.text(5) for _ in range(r.randint(1, 4))] + [None]
        if col == "u":
            return str(uuid.UUID(int=r.getrandbits(128)))
        if col == "txt":
            if r.random() < 0.15:   # large and incompressible: stored out of line
                return "".join(r.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(12000))
            return self.text(r.randint(0, 60))
        if col == "vc":
            return self.text(r.randint(0, 10))[:10]
        if col == "ch":
            return "".join(r.choice("abc xyz") for _ in range(r.randint(0, 3)))
        if col == "inet_":
            return r.choice([f"10.{r.randint(0, 255)}.{r.randint(0, 255)}.{r.randint(0, 255)}/{r.randint(8, 32)}",
                             f"2001:db8::{r.randint(0, 65535):x}"])
        if col == "nul":
            return None if r.random() < 0.7 else self.text(4)
        if col == "money_":
            return f"{r.randint(-10 ** 7, 10 ** 7) / 100:.2f}"
        if col == "bits":
            return "".join(r.choice("01") for _ in range(r.randint(0, 8)))
        raise KeyError(col)

    def text(self, n):
        alphabet = "abcXYZ 019\"'\\,{}\n\té€😀"
        return "".join(self.r.choice(alphabet) for _ in range(n))

    COLS = ["i2", "i8", "f4", "f8", "fnan", "num", "b", "ts", "tstz", "d", "t", "iv", "by", "js",
            "jb", "arr", "tarr", "u", "txt", "vc", "ch", "inet_", "nul", "money_", "bits"]

    @staticmethod
    def cast(col):
        return "::varbit" if col == "bits" else ""

    def insert(self, cur):
        self.next_id += 1
        row = {c: self.value(c) for c in self.COLS}
        cur.execute("INSERT INTO zoo (id, " + ", ".join(self.COLS) + ") VALUES (%s, " +
                    ", ".join(f"%s{self.cast(c)}" for c in self.COLS) + ") ON CONFLICT (id) DO NOTHING",
                    [self.next_id] + [row[c] for c in self.COLS])
        self.ids.append(self.next_id)

    def step(self, cur):
        r = self.r
        for _ in range(r.randint(1, 4)):
            x = r.random()
            if x < 0.4 or len(self.ids) < 20:
                self.insert(cur)
            elif x < 0.85:
                cols = r.sample([c for c in self.COLS if c != "txt"], r.randint(1, 4))
                if r.random() < 0.1:
                    cols.append("txt")
                k = r.choice(self.ids)
                cur.execute("UPDATE zoo SET " + ", ".join(f"{c} = %s{self.cast(c)}" for c in cols) +
                            " WHERE id = %s", [self.value(c) for c in cols] + [k])
            elif x < 0.93:
                k = self.ids.pop(r.randrange(len(self.ids)))
                self.next_id += 1
                cur.execute("UPDATE zoo SET id = %s WHERE id = %s", (self.next_id, k))
                self.ids.append(self.next_id)
            else:
                k = self.ids.pop(r.randrange(len(self.ids)))
                cur.execute("DELETE FROM zoo WHERE id = %s", (k,))

    def run(self):
        conn = None
        while not self.halt.is_set():
            try:
                if conn is None:
                    conn = self.source.connect()
                    conn.autocommit = False
                with conn.cursor() as cur:
                    self.step(cur)
                conn.commit()
                self.txns += 1
            except psycopg2.Error:
                self.errors += 1
                try:
                    conn.close()
                except Exception:
                    pass
                conn = None
                self.halt.wait(0.2)
                continue
            self.halt.wait(1.0 / self.tps)   # the writer's rate, not a wait for a condition
        if conn is not None:
            conn.close()

    def stop(self):
        self.halt.set()
        self.join(60)


# --- the campaign ------------------------------------------------------------

class Campaign:
    # Rates: a run of 25 minutes makes about 200 faults, over 100 kills,
    # 20 server crashes and 50 network faults (docs/chaos.md). The target
    # crashes are shared between the PostgreSQL target (target_crash) and
    # MariaDB (mariadb_crash).
    KINDS = [("penstock_kill", 0.55), ("source_crash", 0.07), ("target_crash", 0.05),
             ("mariadb_crash", 0.05), ("net_drop", 0.07), ("net_stall", 0.07),
             ("net_reset", 0.07), ("net_blackhole", 0.07)]
    CRASHES = ("source_crash", "target_crash", "mariadb_crash")

    def __init__(self, base, seed, minutes):
        self.base, self.seed, self.minutes = base, seed, minutes
        self.r = random.Random(seed)
        self.faults = collections.Counter()
        self.recovery = collections.defaultdict(list)     # (kind, job) -> [seconds]
        self.unrecovered = collections.Counter()           # (kind, job) -> count
        self.findings = []
        self.perm_streak = collections.Counter()
        self.recovers = collections.Counter()
        self.killed_by_us = False

    def finding(self, text):
        log("FINDING: " + text)
        self.findings.append(f"[{time.monotonic() - T0:.0f}s] {text}")

    # set up ------------------------------------------------------------------

    def setup(self):
        log(f"seed {self.seed} (CHAOS_SEED={self.seed} replays this schedule); "
            f"{self.minutes} minutes; work directory {self.base}")
        self.source = PgServer(self.base, "source")
        self.target = PgServer(self.base, "target")
        for s in (self.source, self.target):
            c = s.connect("postgres")
            c.cursor().execute(f"CREATE DATABASE {DB}")
            c.close()
        subprocess.run([str(PGBIN / "pgbench"), "-i", "-s", "1", "-q", "-h", "127.0.0.1", "-p",
                        str(self.source.port), "-U", "postgres", DB], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        c = self.source.connect()
        with c.cursor() as cur:
            cur.execute(TYPE_ZOO)
        c.close()
        # MariaDB with its defaults (InnoDB flushes its log at every commit);
        # a generous readiness deadline: crash recovery on a loaded machine
        self.maria = MariaDB(os.path.join(self.base, "mariadb"), start_timeout=300).start()
        self.maria_up = True
        self.maria.execute(f"CREATE DATABASE {DB}")
        self.maria.execute(MARIA_ZOO, database=DB)
        self.loop = ProxyLoop()
        self.sproxy = self.loop.proxy("source", self.source.port)
        self.tproxy = self.loop.proxy("target", self.target.port)
        self.mproxy = self.loop.proxy("mariadb", self.maria.port)
        self.proxies = [self.sproxy, self.tproxy, self.mproxy]
        log(f"source :{self.source.port} (proxy :{self.sproxy.port}), "
            f"target :{self.target.port} (proxy :{self.tproxy.port}), "
            f"mariadb :{self.maria.port} (proxy :{self.mproxy.port})")
        self.zoo = ZooWriter(self.source, self.seed, float(os.environ.get("CHAOS_ZOO_TPS", "15")))
        self.zoo.start()
        self.pgbench = Pgbench(self.source, int(os.environ.get("CHAOS_PGBENCH_TPS", "40")))
        self.pgbench.start()
        self.server = PenstockServer(self.base)
        self.server.start()
        src = f"postgresql://postgres@127.0.0.1:{self.sproxy.port}/{DB}"
        self.sqlite_path = os.path.join(self.base, "target.db")
        self.jsonl_dir = pathlib.Path(self.base, "jsonl")
        targets = {"to_pg": f"postgresql://postgres@127.0.0.1:{self.tproxy.port}/{DB}",
                   "to_mariadb": f"mysql://root@127.0.0.1:{self.mproxy.port}/{DB}",
                   "to_sqlite": f"sqlite://{self.sqlite_path}",
                   "to_jsonl": f"jsonl://{self.jsonl_dir}"}
        for name in JOBS:
            spec = {"name": name, "type": "sync", "source": {"url": src},
                    "target": {"url": targets[name]},
                    "tables": {"include": TABLES},
                    "retry": {"initial_backoff_ms": 1000, "max_backoff_ms": 10000}}
            status, reply = self.server.call("POST", "/v1/jobs", spec)
            assert status == 201, reply
            status, reply = self.server.call("POST", f"/v1/jobs/{name}/start")
            assert status == 202, reply
        self.wait_streaming(600)
        # The witness: a slot of the source's own test_decoding plugin created
        # once every job streams. Every change it decodes must reach JSON lines.
        self.witness_lsn = self.source.value(
            "SELECT lsn FROM pg_create_logical_replication_slot('chaos_witness', 'test_decoding')")
        log(f"every job streams; witness slot at {self.witness_lsn}")

    def wait_streaming(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            jobs = self.server.jobs() or {}
            self.handle_permanent(jobs)
            if all(jobs.get(n, {}).get("phase") == "streaming" and jobs[n]["state"] == "running"
                   for n in JOBS):
                return
            time.sleep(0.5)
        raise RuntimeError(f"jobs did not stream in {timeout}s: "
                           + json.dumps({n: (j["state"], j["last_error"]) for n, j in jobs.items()}))

    # watching the jobs ---------------------------------------------------------

    def handle_permanent(self, jobs):
        for name, j in jobs.items():
            if j["state"] != "failed_permanently":
                continue
            self.perm_streak[name] += 1
            strategy = "retry" if self.perm_streak[name] <= 3 else "resync"
            err = j.get("last_error") or {}
            self.finding(f"job {name} failed_permanently ({err.get('class')}: "
                         f"{(err.get('message') or '')[:300]}); recover {strategy}")
            self.recovers[strategy] += 1
            self.server.call("POST", f"/v1/jobs/{name}/recover",
                             {"strategy": strategy, "reason": "chaos campaign"})

    def server_alive(self):
        if self.server.proc.poll() is not None and not self.killed_by_us:
            self.finding(f"penstock server exited by itself with {self.server.proc.returncode}")
            self.server.start()

    def source_lsn(self):
        while True:
            try:
                return lsn_int(self.source.value("SELECT pg_current_wal_lsn()::text"))
            except psycopg2.Error:
                time.sleep(0.2)

    def wait_recovered(self, kind, since, timeout=RECOVERY_TIMEOUT):
        """Polls until every job runs, streams and has applied what the source
        had committed when the fault was lifted; records each job's time."""
        goal = self.source_lsn()
        pending = set(JOBS)
        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            self.server_alive()
            jobs = self.server.jobs()
            if jobs:
                self.handle_permanent(jobs)
                for name in list(pending):
                    j = jobs[name]
                    if j["state"] == "running" and j["phase"] == "streaming" and \
                            lsn_int(j["positions"]["applied"]) >= goal:
                        self.recovery[(kind, name)].append(time.monotonic() - since)
                        self.perm_streak[name] = 0
                        pending.discard(name)
            time.sleep(0.2)
        for name in pending:
            self.unrecovered[(kind, name)] += 1
            j = (self.server.jobs() or {}).get(name, {})
            self.finding(f"job {name} not recovered {timeout:.0f}s after {kind}: state "
                         f"{j.get('state')}, applied {j.get('positions', {}).get('applied')}, "
                         f"last error {(j.get('last_error') or {}).get('message')}")

    # faults --------------------------------------------------------------------

    def pick(self):
        x, acc = self.r.random(), 0.0
        for kind, w in self.KINDS:
            acc += w
            if x < acc:
                return kind
        return self.KINDS[-1][0]

    def inject(self, kind):
        """Applies one fault; returns when it is lifted."""
        r = self.r
        if kind == "penstock_kill":
            down = r.uniform(0, 3)
            self.killed_by_us = True
            self.server.kill()
            time.sleep(down)
            self.server.start()
            self.killed_by_us = False
            return f"down {down:.1f}s"
        if kind in ("source_crash", "target_crash"):
            pg = self.source if kind == "source_crash" else self.target
            down = r.uniform(0.5, 6)
            pg.crash()
            time.sleep(down)
            pg.start()
            return f"down {down:.1f}s"
        if kind == "mariadb_crash":
            down = r.uniform(0.5, 6)
            self.maria_up = False
            self.maria.kill()              # SIGKILL of mariadbd: no shutdown
            time.sleep(down)
            self.maria.restart()           # same data directory and port; returns once it pings
            self.maria_up = True
            return f"down {down:.1f}s"
        proxy = r.choice(self.proxies)
        if kind == "net_drop":
            n = proxy.drop_all()
            return f"{proxy.name}: {n} connections reset"
        if kind == "net_reset":
            n = proxy.reset_busiest()
            return f"{proxy.name}: {n} busiest connection reset"
        if kind == "net_stall":
            secs = r.uniform(1, 12)
            proxy.hold(["up", "down"])
            time.sleep(secs)
            proxy.release()
            return f"{proxy.name}: both directions held {secs:.1f}s"
        if kind == "net_blackhole":
            secs = r.uniform(3, 20)
            direction = r.choice(["up", "down"])
            then_drop = r.random() < 0.5
            proxy.hold([direction])
            time.sleep(secs)
            if then_drop:
                proxy.drop_all()
            proxy.release()
            return (f"{proxy.name}: {'to server' if direction == 'up' else 'to penstock'} held "
                    f"{secs:.1f}s{', then connections reset' if then_drop else ''}")
        raise ValueError(kind)

    def run(self):
        end = time.monotonic() + self.minutes * 60
        n = 0
        while time.monotonic() < end:
            n += 1
            kind = self.pick()
            wait = self.r.random() < 0.8     # else the next fault may hit a recovery
            pause = self.r.uniform(0.2, 4)
            started = time.monotonic()
            detail = self.inject(kind)
            self.faults[kind] += 1
            log(f"fault {n}: {kind} ({detail})")
            if wait:
                self.wait_recovered(kind, time.monotonic())
            time.sleep(pause)
            self.server_alive()
        log(f"schedule over after {n} faults")

    # the end -------------------------------------------------------------------

    def finish(self):
        for proxy in self.proxies:
            proxy.release()
        for pg in (self.source, self.target):
            if not pg.up:
                pg.start()
        if not self.maria_up:
            self.maria.restart()
            self.maria_up = True
        self.server_alive()
        self.pgbench.stop()
        self.zoo.stop()
        log(f"writers stopped: pgbench started {self.pgbench.runs} times, zoo {self.zoo.txns} "
            f"transactions ({self.zoo.errors} failed)")
        self.wait_recovered("final catch-up", time.monotonic(), timeout=900)
        ok = True
        for t in TABLES:
            src = pg_rows(SourceDb(self.source), t)
            dst = pg_rows(SourceDb(self.target), t)
            ok &= self.same("to_pg", t, src, dst)
            types = pg_column_types(SourceDb(self.source), t)
            try:
                msrc, mdst = self.maria_rows(t, types, src)
            except Exception as e:
                msrc, mdst = src, [("error", str(e))]
            ok &= self.same("to_mariadb", t, msrc, mdst)
            try:
                dst = sqlite_rows(self.sqlite_path, t, types, src)
            except Exception as e:
                dst = [("error", str(e))]
            ok &= self.same("to_sqlite", t, src, dst)
        ok &= self.check_jsonl()
        jobs = self.server.jobs()
        for name in JOBS:
            if jobs[name]["state"] != "running":
                ok = False
                self.finding(f"job {name} ends {jobs[name]['state']}")
        return ok

    def maria_rows(self, table, types, src):
        """The source's rows and the MariaDB target's, both normalised by
        docs/types-mariadb.md (as tests/integration/mysql_target.py does):
        booleans, bytes, UTC timestamps and char(n) padding read back to
        PostgreSQL's text, FLOAT and DOUBLE compared as the float and double
        they hold. A float or numeric column the campaign created as text
        (MARIA_ZOO) holds the source's text and is compared as text."""
        name = table.split(".", 1)[1]
        c = self.maria.connect(DB, conv={})
        try:
            with c.cursor() as cur:
                cur.execute("SELECT DATA_TYPE FROM information_schema.COLUMNS WHERE "
                            "TABLE_SCHEMA = %s AND TABLE_NAME = %s ORDER BY ORDINAL_POSITION",
                            (DB, name))
                mtypes = [r[0].lower() for r in cur.fetchall()]
                cur.execute(f"SELECT {_select_list(c, DB, name)} FROM `{name}`")
                raw = cur.fetchall()
        finally:
            c.close()
        if len(mtypes) != len(types):
            raise RuntimeError(f"{DB}.{name} has {len(mtypes)} columns, the source {len(types)}")
        cmp = ["text" if t in FLOATS + ("numeric",) and m in MARIA_TEXT else t
               for t, m in zip(types, mtypes)]
        dst = [_comparable(tuple(maria_text(v, t) for v, t in zip(r, cmp)), cmp) for r in raw]
        return [_comparable(r, cmp) for r in src], dst

    def same(self, job, table, src, dst):
        have, got = collections.Counter(src), collections.Counter(dst)
        if have == got:
            self.compared.append(f"{job} {table}: {len(src)} rows equal")
            return True
        missing, extra = list((have - got).elements()), list((got - have).elements())
        self.finding(f"{job} {table} differs: {len(src)} rows in the source, {len(dst)} in the "
                     f"target; missing {len(missing)} {short(missing)}; extra {len(extra)} {short(extra)}")
        return False

    def check_jsonl(self):
        """Replays the JSON-lines events (a repeat of a change counted once,
        and only when flagged reprocessing) and compares the result with the
        source; then every change the witness slot decoded must be there."""
        events = []
        for f in sorted(self.jsonl_dir.glob("*.jsonl")):
            text = f.read_text()
            for line in text[:text.rfind("\n") + 1].splitlines():
                # -0 is a float (a real column's negative zero), not int 0
                events.append(json.loads(line, parse_int=lambda s: -0.0 if s == "-0" else int(s)))
        keys = {}
        for t in TABLES:
            keys[t] = [r[0] for r in SourceDb(self.source).execute(
                "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
                "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = %s::regclass AND i.indisprimary",
                (t,))]
        state = {t: {} for t in TABLES}
        keyless = {t: collections.Counter() for t in TABLES}
        seen = set()
        repeats = flagged = unflagged = 0
        changes = set()
        for e in events:
            src = e["source"]
            t = f"{src['schema']}.{src['table']}"
            if t not in state:
                continue
            row = e.get("after") or e.get("before")
            ident = (e["op"], t, src["lsn"]) if e["op"] != "r" else \
                ("r", t, json.dumps(row, sort_keys=True))
            if ident in seen:
                repeats += 1
                if e.get("reprocessing"):
                    flagged += 1
                else:
                    unflagged += 1
                    if unflagged <= 5:
                        self.finding(f"to_jsonl: change repeated without the reprocessing flag: {e}")
                continue
            seen.add(ident)
            if e["op"] != "r":
                changes.add((src["lsn"], t, e["op"]))
            k = keys[t]
            if not k:
                if e["op"] in ("r", "c"):
                    keyless[t][json.dumps(e["after"], sort_keys=True)] += 1
                elif e["op"] == "t":
                    keyless[t].clear()
                continue
            if e["op"] in ("r", "c"):
                state[t][tuple(e["after"][c] for c in k)] = e["after"]
            elif e["op"] == "u":
                old = tuple((e["before"] or e["after"])[c] for c in k)
                base = state[t].pop(old, {})
                new = dict(base, **e["after"])
                state[t][tuple(e["after"][c] for c in k)] = new
            elif e["op"] == "d":
                state[t].pop(tuple(e["before"][c] for c in k), None)
            elif e["op"] == "t":
                state[t].clear()
        self.jsonl_stats = dict(events=len(events), repeats=repeats, flagged=flagged,
                                unflagged=unflagged)
        ok = unflagged == 0
        sdb = SourceDb(self.source)
        for t in TABLES:
            src = pg_rows(sdb, t)
            types = pg_column_types(sdb, t)
            cols = [r[0] for r in sdb.execute(
                "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 "
                "AND NOT attisdropped ORDER BY attnum", (t,))]
            rows = list(state[t].values()) if keys[t] else \
                [json.loads(j) for j in keyless[t].elements()]
            dst = sorted((tuple(json_text(row.get(c), ty) for c, ty in zip(cols, types))
                          for row in rows), key=lambda r: tuple((v is None, v or "") for v in r))
            src = [tuple(norm_float(v, ty) for v, ty in zip(r, types)) for r in src]
            src.sort(key=lambda r: tuple((v is None, v or "") for v in r))
            ok &= self.same("to_jsonl", t, src, dst)
        # the witness: every change decoded on the source since it was made
        c = self.source.connect()
        with c.cursor() as cur:
            cur.execute("SELECT lsn::text, substring(data from '^table ([^:]+): '), "
                        "substring(data from '^table [^:]+: ([A-Z]+):') "
                        "FROM pg_logical_slot_peek_changes('chaos_witness', NULL, NULL) "
                        "WHERE data LIKE 'table %'")
            witness = cur.fetchall()
            cur.execute("SELECT pg_drop_replication_slot('chaos_witness')")
        c.close()
        ops = {"INSERT": "c", "UPDATE": "u", "DELETE": "d", "TRUNCATE": "t"}
        want = {(lsn_int(lsn), t, ops[op]) for lsn, t, op in witness if t in state}
        lost = sorted(want - changes)
        self.witness_stats = dict(changes=len(want), missing=len(lost))
        if lost:
            ok = False
            self.finding(f"to_jsonl: {len(lost)} of the {len(want)} changes the witness slot "
                         f"decoded are not in the events, first {lost[:5]}")
        return ok

    # the report ----------------------------------------------------------------

    def report(self, ok, started):
        lines = [f"chaos campaign: seed {self.seed}, {self.minutes} minutes of faults, "
                 f"{(time.monotonic() - started) / 60:.1f} minutes in all",
                 "faults injected:"]
        for kind, _ in self.KINDS:
            lines.append(f"  {kind:15} {self.faults[kind]}")
        net = sum(v for k, v in self.faults.items() if k.startswith("net_"))
        crashes = sum(self.faults[k] for k in self.CRASHES)
        lines.append(f"  (penstock kills {self.faults['penstock_kill']}, server crashes "
                     f"{crashes}, network faults {net})")
        lines.append("recovery after the fault was lifted (running, streaming, applied past the "
                     "source's position at that moment), seconds median / max (n):")
        for kind, _ in self.KINDS + [("final catch-up", 0)]:
            cells = []
            for name in JOBS:
                v = self.recovery.get((kind, name), [])
                u = self.unrecovered[(kind, name)]
                cells.append(f"{name} {statistics.median(v):5.1f} / {max(v):5.1f} ({len(v)}"
                             f"{', %d not recovered' % u if u else ''})" if v else f"{name} -")
            lines.append(f"  {kind:15} " + "; ".join(cells))
        lines.append(f"server starts {self.server.starts}; recover actions {dict(self.recovers) or 'none'}")
        for name in JOBS:
            ev = self.server.events(name)
            tos = collections.Counter(e["to"] for e in ev if e["kind"] == "transition")
            lines.append(f"  {name}: transitions to failed {tos['failed']}, to failed_permanently "
                         f"{tos['failed_permanently']}, to running {tos['running']}")
        lines.append(f"JSON lines: {self.jsonl_stats}; witness slot: {self.witness_stats}")
        lines += ["compared:"] + ["  " + c for c in self.compared]
        lines.append("findings:" + ("" if self.findings else " none"))
        lines += ["  " + f for f in self.findings]
        lines.append("RESULT: " + ("every target equals the source, every job running"
                                   if ok else "FAILED (see findings)"))
        text = "\n".join(lines)
        print("\n" + text, flush=True)
        pathlib.Path(self.base, "report.txt").write_text(text + "\n")

    def teardown(self):
        """Stops what setup started, whatever it got to."""
        try:
            if hasattr(self, "server"):
                self.server.stop()
        finally:
            for name in ("source", "target", "maria"):
                if hasattr(self, name):
                    getattr(self, name).stop()


class SourceDb:
    """What conftest's pg_rows and pg_column_types expect of a database."""

    def __init__(self, pg):
        self.pg = pg
        self.cluster = self
        self.name = DB
        self.conn = pg.connect()

    def connect(self, dbname):
        return self.pg.connect(dbname)

    def execute(self, sql, params=None):
        with self.conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall() if cur.description is not None else None


FLOATS = ("real", "double precision")

# The MariaDB target's zoo, created by the campaign: penstock refuses to
# create it (its `numeric` has no precision: no exact DECIMAL) and refuses
# the values NaN and Infinity in FLOAT, DOUBLE and DECIMAL columns, and the
# UUIDs MariaDB's UUID type cannot hold (version digit 8-f, variant digit
# 0-7); the zoo writer writes them into f4, fnan, num and u (random 128
# bits). docs/types-mariadb.md's fix for all of them is a target table made
# by hand with text columns there, which keep the source's text exactly;
# every other column has the type penstock would have created.
MARIA_ZOO = """
CREATE TABLE zoo (
  `id` INT NOT NULL PRIMARY KEY, `i2` SMALLINT, `i8` BIGINT, `f4` VARCHAR(40), `f8` DOUBLE,
  `fnan` VARCHAR(40), `num` VARCHAR(100), `b` TINYINT(1), `ts` DATETIME(6), `tstz` DATETIME(6),
  `d` DATE, `t` TIME(6), `iv` VARCHAR(100), `by` LONGBLOB, `js` JSON, `jb` JSON, `arr` LONGTEXT,
  `tarr` LONGTEXT, `u` CHAR(36), `txt` LONGTEXT, `vc` VARCHAR(10), `ch` CHAR(3),
  `inet_` VARCHAR(43), `nul` LONGTEXT, `money_` VARCHAR(64), `bits` VARCHAR(8)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin"""
MARIA_TEXT = ("char", "varchar", "tinytext", "text", "mediumtext", "longtext")


def short(rows):
    return [str(r)[:160] for r in rows[:3]]


def norm_float(v, pgtype):
    if v is None or pgtype not in FLOATS:
        return v
    return repr(float(v))


def json_text(v, pgtype):
    """A JSON-lines value in the source's canonical text (docs/events.md)."""
    if v is None:
        return None
    if pgtype in FLOATS:
        return repr(float(v))
    if isinstance(v, bool):
        return "t" if v else "f"
    if isinstance(v, (int, float)):
        return str(v)
    return v


def main():
    seed = int(os.environ.get("CHAOS_SEED") or random.SystemRandom().randrange(1, 2 ** 31))
    minutes = float(os.environ.get("CHAOS_MINUTES", "20"))
    keep = "CHAOS_DIR" in os.environ
    base = os.environ.get("CHAOS_DIR") or tempfile.mkdtemp(prefix="penstock-chaos-")
    os.makedirs(base, exist_ok=True)
    os.chmod(base, 0o755)
    camp = Campaign(base, seed, minutes)
    camp.compared = []
    started = time.monotonic()
    ok = False
    try:
        camp.setup()
        camp.run()
        ok = camp.finish()
        camp.report(ok, started)
    finally:
        camp.teardown()
    if ok and not keep:
        shutil.rmtree(base, ignore_errors=True)
    else:
        print(f"work directory kept: {base} (logs, targets, report.txt)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
