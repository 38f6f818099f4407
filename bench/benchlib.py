"""What every benchmark of bench/ shares: the servers, the meters, the output.

Servers. Source and target are separate PostgreSQL 15 clusters (as users
deploy them), started by scripts/pgtmp.sh with PostgreSQL's default
durability: fsync, synchronous_commit and full_page_writes on. DURABILITY=fast
runs the same benchmark on clusters with all three off, the test harness's
settings: a second configuration, labelled as such in every line it prints
and in the results, never the one the goals are judged on.

Meters. measure() times one run of one tool and takes, over the same
interval, the CPU seconds of
  - the tool's own processes (penstock, or the peer's client programs):
    getrusage(RUSAGE_CHILDREN) of this Python process, so every child that
    ran and was waited for counts; a process still running at the end (a
    streaming penstock) is read from /proc before it is stopped;
  - each server: its postmaster's own and reaped children's CPU
    (/proc/PID/stat utime, stime, cutime, cstime) plus its live children's,
    so backends that exit during the run count too; a sampler every 50 ms
    splits it by process kind from /proc/PID/cmdline: walsender, backends
    (client backends and logical replication workers: the subscription's
    apply worker), background (WAL writer, checkpointer, autovacuum, ...).
    A backend that exits between two samples has at most 50 ms of its CPU
    in "background" instead of its kind; totals are exact.

Results. Each benchmark prints its rounds and medians, and writes them to
$BENCH_RESULTS/<name>.json (when set) for bench/summary.py, which prints the
issue's table at the end of `make bench`.
"""
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from conftest import PGBIN, Cluster, wait_for  # noqa: E402,F401  (re-exported)

DURABILITY = os.environ.get("DURABILITY", "durable")
if DURABILITY not in ("durable", "fast"):
    sys.exit("DURABILITY must be durable or fast")
DURABLE = DURABILITY == "durable"
LABEL = ("durable servers (fsync, synchronous_commit, full_page_writes on)" if DURABLE else
         "NON-DURABLE servers (fsync, synchronous_commit, full_page_writes off): not the "
         "configuration the goals are judged on")
TICK = os.sysconf("SC_CLK_TCK")


def banner(what):
    print(f"{what}\nsource and target: separate clusters, {LABEL}", flush=True)


# --- servers ------------------------------------------------------------------

class Servers:
    """The source and the target cluster, each in a temporary directory of
    its own; stop() removes both (a cluster is GBs)."""

    def __init__(self, target_settings=()):
        self.bases = []
        self.source = self._start(())
        self.target = self._start(target_settings)

    def _start(self, settings):
        base = tempfile.mkdtemp(prefix="penstock-bench-")
        os.chmod(base, 0o755)   # the server runs as postgres when we are root
        self.bases.append(base)
        return Cluster(base, durable=DURABLE, settings=settings)

    def stop(self):
        for c in (getattr(self, "source", None), getattr(self, "target", None)):
            if c:
                c.stop()
        for b in self.bases:
            shutil.rmtree(b, ignore_errors=True)


def sql(cluster, db, text, params=None):
    """Runs text on a connection of its own; the rows, if any."""
    c = cluster.connect(db)
    try:
        with c.cursor() as cur:
            cur.execute(text, params)
            return cur.fetchall() if cur.description else None
    finally:
        c.close()


def url(cluster, db):
    return f"postgresql://postgres@127.0.0.1:{cluster.port}/{db}"


def pgbench(cluster):
    return [str(PGBIN / "pgbench"), "-h", "127.0.0.1", "-p", str(cluster.port), "-U", "postgres"]


# For making a backlog, which is not what is measured: the source's commits
# need not wait for its disk (the WAL the consumers decode is the same).
FAST_COMMITS = dict(os.environ, PGOPTIONS="-c synchronous_commit=off")


# --- CPU ----------------------------------------------------------------------

def _stat(pid):
    """(ppid, utime+stime, cutime+cstime) in ticks, or None when gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            rest = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(rest[1]), int(rest[11]) + int(rest[12]), int(rest[13]) + int(rest[14])


def cpu_seconds(pid):
    """utime + stime of a live process (all its threads), in seconds."""
    s = _stat(pid)
    return s[1] / TICK if s else 0.0


def _kind(pid):
    """The kind of a server process by its title; None until it has set one
    (a child just forked still shows the postmaster's command line)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return None
    if not cmd.startswith("postgres: "):
        return None
    title = cmd[len("postgres: "):]
    if title.startswith("walsender"):
        return "walsender"
    if title.startswith(("logical replication worker", "parallel worker")):
        return "backends"
    if title.startswith(("checkpointer", "background writer", "walwriter", "autovacuum",
                         "logical replication launcher", "archiver", "logger", "startup",
                         "stats")):
        return "background"
    return "backends"   # "USER DATABASE HOST STATE"
    for bg in ("writer", "checkpointer", "autovacuum", "launcher", "stats", "archiver",
               "logger", "startup"):
        if bg in cmd:
            return "background"
    return "backends"


class ServerCPU:
    """The CPU a cluster's processes use from start() to stop() (module
    notes): .total, and .kinds (walsender, backends, background)."""

    def __init__(self, cluster):
        with open(os.path.join(cluster.dir, "data", "postmaster.pid")) as f:
            self.pm = int(f.readline())
        self.first = {}   # pid -> (kind, ticks when first seen)
        self.last = {}    # pid -> ticks when last seen

    def _children(self):
        """Every live child of the postmaster and its CPU ticks (the
        postmaster's only thread lists them in its children file)."""
        out = {}
        try:
            with open(f"/proc/{self.pm}/task/{self.pm}/children") as f:
                pids = [int(x) for x in f.read().split()]
        except OSError:
            pids = [int(n) for n in os.listdir("/proc") if n.isdigit()]
        for pid in pids:
            s = _stat(pid)
            if s and s[0] == self.pm:
                out[pid] = s[1]
        return out

    def _total(self, children):
        s = _stat(self.pm)
        return (s[1] + s[2] + sum(children.values())) if s else 0

    def sample(self, children=None):
        children = self._children() if children is None else children
        for pid, ticks in children.items():
            if pid not in self.first:   # born during the interval: all its CPU counts
                self.first[pid] = (None, ticks if self.starting else 0)
            if self.first[pid][0] is None:
                self.first[pid] = (_kind(pid), self.first[pid][1])
            self.last[pid] = ticks
        return children

    def start(self):
        self.starting = True
        self.t0 = self._total(self.sample())
        self.starting = False

    def stop(self):
        ch = self.sample()
        self.total = (self._total(ch) - self.t0) / TICK
        self.kinds = {"walsender": 0.0, "backends": 0.0, "background": 0.0}
        for pid, (kind, t0) in self.first.items():
            self.kinds[kind or "background"] += (self.last[pid] - t0) / TICK
        known = sum(self.kinds.values())
        self.kinds["background"] += max(0.0, self.total - known)   # exited between samples
        return self


class Measure:
    """with Measure(servers) as m: ...  then m.wall, m.client (CPU of this
    process's waited-for children), m.src / m.dst (ServerCPU), and
    m.cpu_line(). m.add_client(pid) counts a child still running at the end
    (call it just before stopping that child)."""

    def __init__(self, servers):
        self.servers = servers
        self.extra_client = 0.0
        self._halt = threading.Event()

    def __enter__(self):
        self.src = ServerCPU(self.servers.source)
        self.dst = ServerCPU(self.servers.target)
        self.src.start()
        self.dst.start()
        self._thread = threading.Thread(target=self._sampler, daemon=True)
        self._thread.start()
        r = resource.getrusage(resource.RUSAGE_CHILDREN)
        self._ru0 = r.ru_utime + r.ru_stime
        self._t0 = time.monotonic()
        return self

    def _sampler(self):
        while not self._halt.wait(0.05):
            self.src.sample()
            self.dst.sample()

    def stop_clock(self):
        """The wall time ends here (e.g. when the slot confirms the end),
        the CPU figures when the block exits."""
        self.wall = time.monotonic() - self._t0

    def add_client(self, pid):
        self.extra_client += cpu_seconds(pid)

    def __exit__(self, *exc):
        if not hasattr(self, "wall"):
            self.stop_clock()
        self._halt.set()
        self._thread.join()
        self.src.stop()
        self.dst.stop()
        r = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.client = r.ru_utime + r.ru_stime - self._ru0 + self.extra_client
        return False

    def record(self):
        return {"wall": self.wall, "client": self.client, "source": self.src.total,
                "walsender": self.src.kinds["walsender"], "target": self.dst.total,
                "target_backends": self.dst.kinds["backends"]}


def cpu_line(rec, client="penstock"):
    return (f"CPU s: walsender {rec['walsender']:.2f} (source {rec['source']:.2f}), "
            f"target backends {rec['target_backends']:.2f} (target {rec['target']:.2f}), "
            f"{client} {rec['client']:.2f}")


def medians(records):
    """The median of every field over a list of records."""
    return {k: statistics.median(r[k] for r in records) for k in records[0]}


# --- results ------------------------------------------------------------------

def machine():
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(x.split(":", 1)[1].strip() for x in f if x.startswith("model name"))
    except (OSError, StopIteration):
        pass
    with open("/proc/meminfo") as f:
        mem = int(f.readline().split()[1]) // (1024 * 1024)
    pg = subprocess.run([str(PGBIN / "postgres"), "--version"], capture_output=True,
                        text=True).stdout.strip()
    return {"cpu": cpu, "cores": os.cpu_count(), "mem_gib": mem,
            "kernel": platform.release(), "postgres": pg,
            "load_average": os.getloadavg()}


def save(name, result):
    """Writes result (a dict) to $BENCH_RESULTS/name.json, with the
    configuration and the machine."""
    d = os.environ.get("BENCH_RESULTS")
    if not d:
        return
    os.makedirs(d, exist_ok=True)
    result = dict(result, durability=DURABILITY, machine=machine())
    with open(os.path.join(d, f"{name}.json"), "w") as f:
        json.dump(result, f, indent=1)
