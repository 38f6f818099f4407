"""A throwaway MariaDB server for tests.

    with MariaDB(base_dir) as m:          # or m = MariaDB(...); m.start(); m.stop()
        c = m.connect()                    # pymysql connection, autocommit
        m.execute("CREATE DATABASE d")
        m.binlog_files()                   # absolute paths, in order

The server runs as root (tests run as root in CI) in a fresh data directory
under base_dir, on a free loopback port and a socket in that directory, with
the binlog settings a CDC source needs: ROW format, FULL row image, FULL row
metadata, CRC32 checksums, strict GTID mode. `time_zone` sets
--default-time-zone; `extra` appends server options (e.g.
["--log-bin-compress=ON"]).

Readiness is polled with a deadline (mariadb-admin ping), never slept for.
stop() shuts the server down cleanly and, failing that, kills it; the data
directory is left for the caller to remove (the fixture removes it).

Usable without pytest: `python3 tests/integration/mariadb.py DIR [ZONE]`
starts a server in DIR and prints its port and socket; SIGTERM or SIGINT
stops it.
"""
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

BINLOG_OPTIONS = [
    "--server-id=1",
    "--log-bin=binlog",            # relative to the data directory
    "--binlog-format=ROW",
    "--binlog-row-image=FULL",
    "--binlog-row-metadata=FULL",
    "--binlog-checksum=CRC32",
    "--gtid-strict-mode=ON",
    "--local-infile=1",
]


def free_port():
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def _which(name):
    path = shutil.which(name)
    if not path:
        raise RuntimeError(f"{name} not found: install mariadb-server and mariadb-client "
                           f"(scripts/install-deps.sh)")
    return path


class MariaDB:
    def __init__(self, base_dir, time_zone=None, extra=None, start_timeout=60.0):
        self.base = os.path.abspath(base_dir)
        self.datadir = os.path.join(self.base, "data")
        self.tmpdir = os.path.join(self.base, "tmp")
        self.socket = os.path.join(self.base, "mysqld.sock")
        self.pidfile = os.path.join(self.base, "mysqld.pid")
        self.logfile = os.path.join(self.base, "mysqld.log")
        self.time_zone = time_zone
        self.extra = list(extra or [])
        self.start_timeout = start_timeout
        self.port = None
        self.proc = None

    # --- lifecycle ---------------------------------------------------------

    def start(self):
        os.makedirs(self.base, exist_ok=True)
        # a temporary directory of its own: servers sharing /tmp collided on
        # their temporary tables' file names (mariadb-install-db failed with
        # "Error on delete of '/tmp/#sql-temptable-...'")
        os.makedirs(self.tmpdir, exist_ok=True)
        install = subprocess.run(
            [_which("mariadb-install-db"), "--no-defaults", f"--datadir={self.datadir}",
             "--user=root", "--auth-root-authentication-method=normal", "--skip-test-db",
             f"--tmpdir={self.tmpdir}"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if install.returncode != 0:
            raise RuntimeError(f"mariadb-install-db failed:\n{install.stdout}")
        self.port = free_port()
        return self._launch()

    def restart(self):
        """Starts the stopped server again: same data directory, same port."""
        assert self.proc is None, "the server is running"
        return self._launch()

    def kill(self):
        """As a crash: SIGKILL, no shutdown."""
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=60)
            self.proc = None

    def _launch(self):
        args = [_which("mariadbd"), "--no-defaults", "--user=root",
                f"--datadir={self.datadir}", f"--socket={self.socket}", f"--tmpdir={self.tmpdir}",
                f"--pid-file={self.pidfile}", f"--log-error={self.logfile}",
                f"--port={self.port}", "--bind-address=127.0.0.1",
                "--innodb-buffer-pool-size=32M", "--innodb-log-file-size=16M",
                "--skip-name-resolve", "--character-set-server=utf8mb4",
                "--collation-server=utf8mb4_general_ci"] + BINLOG_OPTIONS
        if self.time_zone:
            args.append(f"--default-time-zone={self.time_zone}")
        args += self.extra
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _ping(self):
        r = subprocess.run([_which("mariadb-admin"), "--no-defaults", f"--socket={self.socket}",
                            "-uroot", "ping"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
        return r.returncode == 0

    def _wait_ready(self):
        deadline = time.monotonic() + self.start_timeout
        while not self._ping():
            if self.proc.poll() is not None:
                raise RuntimeError(f"mariadbd exited with {self.proc.returncode}:\n{self.log()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"mariadbd not ready after {self.start_timeout}s:\n{self.log()}")
            time.sleep(0.05)

    def stop(self, timeout=60.0):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            subprocess.run([_which("mariadb-admin"), "--no-defaults", f"--socket={self.socket}",
                            "-uroot", "shutdown"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.send_signal(signal.SIGKILL)
                self.proc.wait(timeout=timeout)
        self.proc = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def log(self):
        try:
            with open(self.logfile, errors="replace") as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    # --- SQL ---------------------------------------------------------------

    def connect(self, database=None, **kw):
        import pymysql
        return pymysql.connect(unix_socket=self.socket, user="root", database=database,
                               autocommit=True, charset="utf8mb4", **kw)

    def execute(self, sql, params=None, database=None):
        """Runs one statement on a new connection; returns its rows (or None)."""
        c = self.connect(database)
        try:
            with c.cursor() as cur:
                cur.execute(sql, params)
                return cur.fetchall() if cur.description else None
        finally:
            c.close()

    @property
    def url(self):
        return f"mysql://root@127.0.0.1:{self.port}/"

    def binlog_files(self):
        """The server's binlog files, oldest first, as absolute paths."""
        rows = self.execute("SHOW BINARY LOGS")
        return [os.path.join(self.datadir, r[0]) for r in rows]

    def flush_binlogs(self):
        self.execute("FLUSH BINARY LOGS")


def mariadb_server(tmp_dir, **kw):
    """Generator for a pytest fixture: starts a server under tmp_dir, yields it,
    stops it and removes its directory."""
    m = MariaDB(tmp_dir, **kw)
    m.start()
    try:
        yield m
    finally:
        m.stop()
        shutil.rmtree(tmp_dir, ignore_errors=True)


if __name__ == "__main__":
    base = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="mariadb-")
    tz = sys.argv[2] if len(sys.argv) > 2 else None
    m = MariaDB(base, time_zone=tz).start()
    print(f"port {m.port} socket {m.socket} datadir {m.datadir}", flush=True)
    # stop cleanly on SIGTERM and SIGINT (a background job ignores SIGINT)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        m.stop()
