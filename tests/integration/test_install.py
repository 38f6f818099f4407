"""Installing penstock as a service (issue 20): `make install` into a
temporary DESTDIR lays out the binary, the man pages (rendered by `man -l`),
the systemd unit, the environment file example, bash completion and the
dashboards; and `penstock run --progress` draws the load and then the
stream's lag in place on a terminal, plain log lines elsewhere.
"""
import json
import os
import pty
import re
import select
import shutil
import signal
import subprocess
import threading

from conftest import BIN, ROOT, wait_for


def make_install(*args):
    # a clean make: under `make -s check` the parent's MAKEFLAGS would silence it
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    p = subprocess.run(["make", "--no-print-directory", "install", *args], cwd=ROOT,
                       capture_output=True, text=True, timeout=600, env=env)
    assert p.returncode == 0, p.stdout + p.stderr
    return p.stdout


def test_make_install_lays_out_a_service(tmp_path):
    dest = tmp_path / "dest"
    out = make_install(f"DESTDIR={dest}", "PREFIX=/usr")
    assert "install -m 0755" in out
    usr = dest / "usr"
    layout = {
        "bin/penstock": 0o755,
        "share/man/man1/penstock.1": 0o644,
        "share/man/man5/penstock-spec.5": 0o644,
        "lib/systemd/system/penstock.service": 0o644,
        "share/doc/penstock/penstock.env.example": 0o644,
        "share/bash-completion/completions/penstock": 0o644,
        "share/penstock/grafana/penstock.json": 0o644,
        "share/penstock/prometheus/penstock-alerts.yml": 0o644,
    }
    found = sorted(str(p.relative_to(usr)) for p in usr.rglob("*") if p.is_file())
    assert found == sorted(layout), found
    for rel, mode in layout.items():
        assert (usr / rel).stat().st_mode & 0o777 == mode, rel
    assert not [p for p in dest.iterdir() if p.name != "usr"]   # nothing outside PREFIX

    version = subprocess.run([str(usr / "bin/penstock"), "version"], capture_output=True, text=True)
    assert version.returncode == 0 and version.stdout.startswith("penstock ")

    # the man pages render, with what they must say
    for page, words in [("share/man/man1/penstock.1", ["penstock - change data capture",
                                                        "--progress", "EXIT STATUS", "PENSTOCK_API_TOKEN",
                                                        "penstock-spec(5)"]),
                        ("share/man/man5/penstock-spec.5", ["webhook.url_env", "snapshot.parallel",
                                                            "X-Penstock-Signature", "penstock(1)"])]:
        p = subprocess.run(["man", "-l", str(usr / page)], capture_output=True, text=True,
                           env=dict(os.environ, MANWIDTH="100", MANPAGER="cat", PAGER="cat"))
        assert p.returncode == 0 and not p.stderr.strip(), p.stderr
        text = re.sub(".\b", "", p.stdout)   # overstrike bold, if any
        for w in words:
            assert w in text, (page, w)

    # the unit: notify with a watchdog, restarts on failure except for the
    # exit codes a restart cannot fix, its state directory
    unit = (usr / "lib/systemd/system/penstock.service").read_text()
    keys = {}
    for line in unit.splitlines():
        if "=" in line and not line.startswith("#"):
            k, v = line.split("=", 1)
            keys.setdefault(k, v)
    assert keys["Type"] == "notify"
    assert keys["WatchdogSec"] == "30s"
    assert keys["Restart"] == "on-failure"
    assert keys["StateDirectory"] == "penstock"
    assert set(keys["RestartPreventExitStatus"].split()) == {"2", "3"}
    assert keys["ExecStart"].startswith("/usr/bin/penstock server")
    assert keys["EnvironmentFile"] == "-/etc/penstock/penstock.env"
    env = (usr / "share/doc/penstock/penstock.env.example").read_text()
    assert "PENSTOCK_API_TOKEN" in env and "PENSTOCK_OPTS" in env
    assert subprocess.run(["bash", "-n", str(usr / "share/bash-completion/completions/penstock")]).returncode == 0
    json.loads((usr / "share/penstock/grafana/penstock.json").read_text())

    # installed for real under a prefix, systemd itself accepts the unit
    if shutil.which("systemd-analyze"):
        prefix = tmp_path / "prefix"
        make_install(f"PREFIX={prefix}")
        p = subprocess.run(["systemd-analyze", "verify", "--man=no",
                            str(prefix / "lib/systemd/system/penstock.service")],
                           capture_output=True, text=True)
        assert p.returncode == 0, p.stdout + p.stderr


# --- penstock run --progress ---------------------------------------------------

def progress_spec(tmp_path, db, name):
    db.execute("CREATE TABLE IF NOT EXISTS p_big (id int PRIMARY KEY, v text)")
    db.execute("CREATE TABLE IF NOT EXISTS p_small (id int PRIMARY KEY, v text)")
    if not db.value("SELECT count(*) FROM p_big"):
        db.execute("INSERT INTO p_big SELECT g, md5(g::text) FROM generate_series(1, 60000) g")
        db.execute("INSERT INTO p_small SELECT g, 's' FROM generate_series(1, 100) g")
        db.execute("ANALYZE")
    spec = {"name": name, "type": "sync", "source": {"url": db.url},
            "target": {"url": f"sqlite:///{tmp_path}/{name}.db"},
            "tables": {"include": ["public.p_*"]},
            # at most 30000 rows a second: the load takes at least 2 s, so
            # the display draws it on any machine
            "limits": {"rows_per_sec": 30000}, "snapshot": {"chunk_rows": 10000}}
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(spec))
    return path


class Run:
    """penstock run with its stderr on a pseudo-terminal or in a file."""

    def __init__(self, tmp_path, spec, progress=None, tty=False):
        args = [BIN, "run", "--state-dir", str(tmp_path / "state")]
        if progress:
            args.append(f"--progress={progress}")
        self.out = b""
        self.lock = threading.Lock()
        env = dict(os.environ, TERM="xterm", COLUMNS="150")
        if tty:
            master, slave = pty.openpty()
            self.proc = subprocess.Popen(args + [str(spec)], stdout=subprocess.DEVNULL, stderr=slave,
                                         env=env)
            os.close(slave)
            self.master = master
            threading.Thread(target=self._drain, daemon=True).start()
        else:
            self.file = tmp_path / f"run-{os.getpid()}-{id(self)}.err"
            self.proc = subprocess.Popen(args + [str(spec)], stdout=subprocess.DEVNULL,
                                         stderr=open(self.file, "wb"), env=env)
            self.master = None

    def _drain(self):
        while True:
            r, _, _ = select.select([self.master], [], [], 1)
            if r:
                try:
                    chunk = os.read(self.master, 65536)
                except OSError:
                    return
                if not chunk:
                    return
                with self.lock:
                    self.out += chunk
            elif self.proc.poll() is not None:
                return

    def text(self):
        if self.master is None:
            return self.file.read_bytes().decode(errors="replace")
        with self.lock:
            return self.out.decode(errors="replace")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(60)
        if self.master is not None:
            wait_for(lambda: "stopped cleanly" in self.text(), 30, what="the last log line")
            os.close(self.master)
        return rc


def test_run_draws_its_progress_in_place_on_a_terminal(tmp_path, db):
    run = Run(tmp_path, progress_spec(tmp_path, db, "prog"), tty=True)   # --progress=auto
    wait_for(lambda: "; streaming, " in run.text() or run.proc.poll() is not None, 120,
             what="the stream to start")
    assert run.proc.poll() is None, run.text()
    db.execute("INSERT INTO p_small SELECT g, 'n' FROM generate_series(1001, 1010) g")
    wait_for(lambda: re.search(r"streaming  lag [0-9.]+ s \([^)]*behind\)  10 changes", run.text()),
             60, what="the stream's line with the 10 changes")
    assert run.stop() == 0
    text = run.text()
    # the load: every table with its rows against the estimate, rate and ETA,
    # redrawn in place (cursor up, erase below)
    load = re.findall(r"load  \d/2 tables  [\d,]+/~[\d,]+ rows  \d+%  [\d,]+ rows/s  ETA \S+", text)
    assert load, text[:3000]
    assert re.search(r"public\.p_big +\[[#-]{20}\] [\d,]+/~[\d,]+  [\d,]+ rows/s  ETA", text)
    assert "\x1b[J" in text and re.search(r"\x1b\[\dA", text)
    # log records stay whole, above the block
    assert re.search(r"\n\S+Z info  loaded public\.p_big: 60000 rows", text.replace("\r", "\n"))
    # the block is taken away at the end: the last thing written erases it
    assert "stopped cleanly" in text and text.endswith("\x1b[J")


def test_run_logs_plain_lines_when_not_on_a_terminal(tmp_path, db):
    spec = progress_spec(tmp_path, db, "plain")
    for i, progress in enumerate((None, "never")):   # auto into a file, then never
        run = Run(tmp_path, spec, progress=progress)
        wait_for(lambda: "; streaming, " in run.text() or run.proc.poll() is not None, 120,
                 what="the stream to start")
        assert run.stop() == 0
        text = run.text()
        assert "\x1b[" not in text and "\r" not in text, text[:2000]
        assert "streaming  lag" not in text
        if i == 0:   # the first run loads, with the load's log lines
            assert re.search(r"info  loaded public\.p_big: 60000 rows", text), text[:2000]


def test_run_draws_anyway_with_progress_always(tmp_path, db):
    run = Run(tmp_path, progress_spec(tmp_path, db, "always"), progress="always")
    wait_for(lambda: "streaming  lag" in run.text() or run.proc.poll() is not None, 120,
             what="the stream's line")
    assert run.stop() == 0
    assert "\x1b[J" in run.text() and "load  " in run.text()
    p = subprocess.run([BIN, "run", "--progress=sometimes", str(tmp_path / "always.json")],
                       capture_output=True, text=True)
    assert p.returncode == 2 and "--progress: 'sometimes' is not auto, always or never" in p.stderr
