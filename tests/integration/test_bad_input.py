"""Bad input at every door (issue 22, item 5; the table is docs/bad-input.md):
what the user gets for malformed input where the other test files do not
already show it. Each test names the rows of the table it backs.

Doors: the spec file, the environment, the checkpoint (file and target row),
the server's job store, the API's bodies and paths, and the source stream
(a loopback proxy that corrupts one pgoutput message on its way to penstock).
Every refusal must be one line that says what is wrong, with the documented
exit code or HTTP status, and change nothing.
"""
import json
import os
import select
import socket
import sqlite3
import struct
import subprocess
import threading

import pytest

from conftest import BIN, pg_rows, wait_for
from test_server import TOKEN, Server, spec_for


def run(args, env=None, timeout=60):
    return subprocess.run([BIN, *args], capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, **(env or {})))


def one_error_line(stderr):
    lines = [line for line in stderr.splitlines() if line.startswith("penstock: error:")]
    assert len(lines) == 1, stderr
    return lines[0]


def cdc_spec(url, name="bad", target="jsonl:-", **extra):
    s = {"name": name, "type": "cdc", "source": {"url": url}, "target": {"url": target}}
    s.update(extra)
    return s


# --- the spec file ------------------------------------------------------------

def test_spec_files_that_are_not_specs(tmp_path):
    """Rows: spec file — bytes that are not JSON, empty, larger than 1 MiB,
    a directory, a JSON array; password_env unset or malformed, password_file
    unreadable; a plugin option its plugin refuses."""
    cases = [
        ("garbage.json", b"\x00\x01\xfe\xff garbage", "garbage.json:1:"),
        ("empty.json", b"", "empty.json:1:0:"),
        ("latin1.json", b'{"name": "caf\xe9"}', "latin1.json:1:"),
        ("big.json", b" " * (1024 * 1024 + 1), "is larger than 1 MiB"),
        ("array.json", b"[1, 2]", "array.json: top level: expected an object, got array"),
    ]
    for name, content, phrase in cases:
        (tmp_path / name).write_bytes(content)
        r = run(["run", "--state-dir", str(tmp_path / "s"), str(tmp_path / name)])
        assert r.returncode == 2, (name, r.stderr)
        assert phrase in one_error_line(r.stderr), (name, r.stderr)
    (tmp_path / "dir.json").mkdir()
    r = run(["run", "--state-dir", str(tmp_path / "s"), str(tmp_path / "dir.json")])
    assert r.returncode == 2 and "Is a directory" in one_error_line(r.stderr)

    for source, phrase in [
            ({"password_env": "PENSTOCK_TEST_UNSET_VAR"},
             "source.password_env: environment variable PENSTOCK_TEST_UNSET_VAR is not set"),
            ({"password_file": str(tmp_path / "nope")}, "source.password_file: cannot read"),
            ({"password_env": "1BAD NAME"}, "source.password_env: must be the name of an "
                                            "environment variable"),
            ({"slot": "Bad-Slot!"}, "source.slot: 'Bad-Slot!' is not valid; use 1 to 63 "
                                    "characters a-z, 0-9 or '_'")]:
        spec = cdc_spec("postgresql://u@127.0.0.1:1/db")
        spec["source"].update(source)
        f = tmp_path / "pw.json"
        f.write_text(json.dumps(spec))
        r = run(["run", "--state-dir", str(tmp_path / "s"), str(f)])
        assert r.returncode == 2, r.stderr
        assert phrase in one_error_line(r.stderr)
    # nothing was created for any of them
    assert not (tmp_path / "s" / "jobs").exists()


# --- the environment ----------------------------------------------------------

def test_environment_variables(tmp_path):
    """Rows: environment — PENSTOCK_FAULT, PENSTOCK_STATE_DIR, HOME,
    PENSTOCK_API_TOKEN, PENSTOCK_SERVER."""
    f = tmp_path / "spec.json"
    f.write_text(json.dumps(cdc_spec("postgresql://u@127.0.0.1:1/db")))
    for value, phrase in [("garbage", "PENSTOCK_FAULT: 'garbage' is not <point>:<error|crash>"),
                          ("source.read:explode", "action 'explode' is not error or crash"),
                          ("source.read:crash@0", "PENSTOCK_FAULT")]:
        r = run(["run", "--state-dir", str(tmp_path / "s"), str(f)], {"PENSTOCK_FAULT": value})
        assert r.returncode == 2, (value, r.stderr)
        assert phrase in one_error_line(r.stderr), (value, r.stderr)

    afile = tmp_path / "afile"
    afile.write_text("")
    r = run(["run", str(f)], {"PENSTOCK_STATE_DIR": str(afile)})
    assert r.returncode == 1 and "exists and is not a directory" in one_error_line(r.stderr)

    env = {k: v for k, v in os.environ.items() if k not in ("HOME", "PENSTOCK_STATE_DIR")}
    r = subprocess.run([BIN, "run", str(f)], capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 2
    assert "no state directory: pass --state-dir DIR or set PENSTOCK_STATE_DIR" in r.stderr

    r = run(["server", "--state-dir", str(tmp_path / "srv"), "--listen", "127.0.0.1:0"],
            {"PENSTOCK_API_TOKEN": "short"})
    assert r.returncode == 2 and "shorter than 16 characters" in one_error_line(r.stderr)

    for server in ("garbage", "http://127.0.0.1:1", "ftp://x", "http://[::1"):
        r = run(["job", "list"], {"PENSTOCK_SERVER": server, "PENSTOCK_API_TOKEN": TOKEN})
        assert r.returncode == 1, (server, r.stderr)
        line = one_error_line(r.stderr)
        assert f"cannot reach the penstock server at {server}" in line and TOKEN not in line


# --- the checkpoint -----------------------------------------------------------

CORRUPT_CHECKPOINTS = [
    ("not json", "is unreadable", 3),
    ('{"format": 1, "identity": {}, "cdc_state": "SIDEWAYS"}', "unknown cdc_state 'SIDEWAYS'", 3),
    ('{"format": 7}', "is not a penstock checkpoint of format 1", 3),
    ('{"format": 1, "identity": {}, "cdc_state": "TFEND", "position": "' + "9" * 200 + '"}',
     "position is longer than penstock writes it", 3),
]


def stopped_job(make_penstock, db, target=None):
    """A cdc job that streamed once and stopped cleanly, leaving a checkpoint."""
    db.execute("CREATE TABLE IF NOT EXISTS items (id int PRIMARY KEY, v text)")
    p = make_penstock("ck", tables={"include": ["public.items"]}, target=target)
    p.start()
    p.wait_streaming(db)
    assert p.stop() == 0
    return p


def test_corrupt_checkpoint_file(db, make_penstock):
    """Rows: checkpoint file — unreadable, unknown marker, wrong format, a field
    too long, a position that is not an LSN."""
    p = stopped_job(make_penstock, db)
    path = p.state_dir / "jobs" / "ck" / "checkpoint.json"
    good = json.loads(path.read_text())
    for text, phrase, code in CORRUPT_CHECKPOINTS:
        path.write_text(text)
        rc, _, err = p.run_to_exit()
        assert rc == code, (text, err)
        line = one_error_line(err)
        assert phrase in line and f"checkpoint '{path}'" in line, (text, line)
        assert line.endswith("; move it away to start over"), line
    path.write_text(json.dumps(dict(good, position="not-an-lsn")))
    rc, _, err = p.run_to_exit()
    assert rc == 3 and "position 'not-an-lsn' is not a PostgreSQL LSN" in one_error_line(err)
    # a backfill under way whose last key is not one text per key column
    # (issue 15 keeps it in the checkpoint's spec): refused, not a crash
    for after in (["42", 7], ["1", "2"], "42"):
        spec = dict(good["spec"], backfill=[{"table": "public.items", "after": after,
                                             "rows": 41, "chunks": 1}])
        path.write_text(json.dumps(dict(good, spec=spec)))
        rc, _, err = p.run_to_exit()
        line = one_error_line(err)
        assert rc == 3 and "backfill of public.items is malformed (after: " in line, (after, line)
    # the good one back: the job resumes
    path.write_text(json.dumps(good))
    p.start()
    p.wait_streaming(db)
    assert p.stop() == 0


def test_corrupt_checkpoint_row_in_postgresql_target(db, target_db, make_penstock):
    """Row: checkpoint row in a PostgreSQL target (penstock.checkpoint)."""
    p = stopped_job(make_penstock, db, target=target_db.url)
    good = target_db.value("SELECT body FROM penstock.checkpoint WHERE job = 'ck'")
    for text, phrase, code in CORRUPT_CHECKPOINTS:
        target_db.execute("UPDATE penstock.checkpoint SET body = %s WHERE job = 'ck'", (text,))
        rc, _, err = p.run_to_exit()
        assert rc == code, (text, err)
        line = one_error_line(err)
        assert phrase in line and "checkpoint of job 'ck' in the target" in line, (text, line)
        assert line.endswith("; delete it to start over"), line
    target_db.execute("UPDATE penstock.checkpoint SET body = %s WHERE job = 'ck'", (good,))
    p.start()
    p.wait_streaming(db)
    assert p.stop() == 0


def test_corrupt_checkpoint_row_in_sqlite_target(db, tmp_path, make_penstock):
    """Row: checkpoint row in a SQLite target (_penstock_checkpoint)."""
    target = tmp_path / "t.db"
    p = stopped_job(make_penstock, db, target=f"sqlite://{target}")
    with sqlite3.connect(target) as c:
        good = c.execute("SELECT body FROM _penstock_checkpoint WHERE job = 'ck'").fetchone()[0]
    for text, phrase, code in CORRUPT_CHECKPOINTS + [(b"\xff\xfe binary", "is unreadable", 3)]:
        with sqlite3.connect(target) as c:
            c.execute("UPDATE _penstock_checkpoint SET body = ? WHERE job = 'ck'", (text,))
        rc, _, err = p.run_to_exit()
        assert rc == code, (text, err)
        line = one_error_line(err)
        assert phrase in line and "checkpoint of job 'ck' in the target" in line, (text, line)
        assert line.endswith("; delete it to start over"), line
    with sqlite3.connect(target) as c:
        c.execute("UPDATE _penstock_checkpoint SET body = ? WHERE job = 'ck'", (good,))
    p.start()
    p.wait_streaming(db)
    assert p.stop() == 0


# --- the server's job store ---------------------------------------------------

def test_job_store_that_is_not_a_database(tmp_path):
    """Row: state store — penstock.db holds something else."""
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    (state / "penstock.db").write_bytes(b"not a database " * 100)
    r = run(["server", "--state-dir", str(state), "--listen", "127.0.0.1:0"],
            {"PENSTOCK_API_TOKEN": TOKEN})
    assert r.returncode == 1
    line = one_error_line(r.stderr)
    assert "penstock.db: file is not a database" in line
    assert "another server" not in line          # the lock says that, not this message
    assert "move it away" in line


def test_job_store_rows_tampered_with(tmp_path, db):
    """Rows: state store — a job whose spec no longer parses, an unknown state,
    a row with NULLs, JSON columns that are not JSON."""
    state = tmp_path / "state"
    s = Server(state).start()
    try:
        for name in ("good", "badspec", "oddstate", "nulls", "junkjson"):
            assert s.call("POST", "/v1/jobs", spec_for(db, "jsonl:///tmp/x", name=name))[0] == 201
    finally:
        s.stop(keep_jobs=True)
    with sqlite3.connect(state / "penstock.db") as c:
        c.execute("UPDATE jobs SET spec = '{\"name\": 3' WHERE name = 'badspec'")
        c.execute("UPDATE jobs SET state = 'sideways' WHERE name = 'oddstate'")
        c.execute("UPDATE jobs SET checks = 'nope', last_error = '[', status = '{' "
                  "WHERE name = 'junkjson'")
        # a table that lets NULLs in (an older or hand-made store)
        c.executescript("""
            ALTER TABLE jobs RENAME TO jobs_old;
            CREATE TABLE jobs (id TEXT, name TEXT, spec TEXT, state TEXT, health TEXT,
                               checks TEXT, last_error TEXT, status TEXT, created_at INTEGER,
                               updated_at INTEGER);
            INSERT INTO jobs SELECT * FROM jobs_old;
            DROP TABLE jobs_old;
            UPDATE jobs SET spec = NULL, state = NULL WHERE name = 'nulls';
        """)
    s = Server(state).start()
    try:
        jobs = {j["name"]: j for j in s.call("GET", "/v1/jobs")[1]["jobs"]}
        assert set(jobs) == {"good", "oddstate", "junkjson"}, jobs
        assert jobs["good"]["state"] == "created"
        assert jobs["oddstate"]["state"] == "failed_permanently"
        assert jobs["junkjson"]["state"] == "created"
        log = s.logtext()
        assert "job store: job badspec: its spec no longer parses" in log
        assert "job store: job oddstate: unknown state 'sideways'" in log
        assert "job store: a job row lacks its spec or state (job nulls); left out" in log
    finally:
        s.stop()


# --- the API's bodies and paths -----------------------------------------------

def test_api_bodies_and_paths(tmp_path, db):
    """Rows: API body — PATCH not an object, action body not JSON, complete and
    compare bodies, empty create; API path — bad query arguments, bytes that
    are not UTF-8, an id too long, NUL."""
    s = Server(tmp_path / "state").start()
    try:
        assert s.call("POST", "/v1/jobs", spec_for(db, "jsonl:///tmp/x"))[0] == 201
        before = s.call("GET", "/v1/jobs/orders/events")[1]["events"]

        def refused(method, path, status, code=None, field=None, **kw):
            got, reply = s.call(method, path, **kw)
            assert got == status, (method, path, kw, reply)
            assert isinstance(reply, dict) and "\n" not in reply["error"]["message"], reply
            if code:
                assert reply["error"]["code"] == code, reply
            if field:
                assert reply["error"]["field"] == field, reply
            return reply

        refused("POST", "/v1/jobs", 400, "invalid_spec", raw=b"")
        reply = refused("PATCH", "/v1/jobs/orders", 400, "invalid_json", raw=b"[1]")
        assert reply["error"]["message"] == \
            "request body: expected a JSON object (a merge patch of the spec)", reply
        reply = refused("POST", "/v1/jobs/orders/recover", 400, "invalid_json", raw=b'["retry"]')
        assert reply["error"]["message"] == "request body: expected a JSON object", reply
        refused("PATCH", "/v1/jobs/orders", 400, "invalid_json", raw=b"\xff\xfe")
        refused("PATCH", "/v1/jobs/orders", 400, "invalid_spec", "source.url",
                body={"source": {"url": "postgresql://u:pw@h/db"}})
        refused("POST", "/v1/jobs/orders/pause", 400, "invalid_json", raw=b"reason=x")
        refused("POST", "/v1/jobs/orders/pause", 400, "invalid_request", "reason",
                body={"reason": 5})
        refused("POST", "/v1/jobs/orders/complete", 400, "invalid_request", "compare",
                body={"compare": "thorough"})
        refused("POST", "/v1/jobs/orders/complete", 400, "invalid_request", "when",
                body={"when": "now"})
        for body, field in [({"mode": "all"}, "mode"), ({"sample_percent": 0}, "sample_percent"),
                            ({"chunk_rows": 10}, "chunk_rows"), ({"tables": []}, "tables"),
                            ({"tables": [1]}, "tables"), ({"repair": "yes"}, "repair"),
                            ({"max_report": -1}, "max_report"), ({"colour": 1}, "colour")]:
            refused("POST", "/v1/jobs/orders/compare", 400, "invalid_request", field, body=body)
        for query in ("limit=abc", "limit=0", "limit=100001", "after=-1", "limit=1e3", "limit="):
            refused("GET", f"/v1/jobs/orders/events?{query}", 400)
        # the status page's history (issue 20) and the compare reports
        for path in ("history?since=-5", "history?since=x", "history?since=",
                     "compares?limit=0", "compares?limit=1001", "compares?limit=ten"):
            reply = refused("GET", f"/v1/jobs/orders/{path}", 400, "invalid_request")
            assert reply["error"]["message"].startswith(
                f"query parameter {path.split('?')[1].split('=')[0]}: expected an integer"), reply
        reply = refused("GET", "/v1/jobs/%FF%FEx", 404, "not_found")
        json.dumps(reply)
        refused("GET", "/v1/jobs/" + "a" * 300, 404, "not_found")
        refused("GET", "/v1/jobs/orders/" + "b" * 100, 404, "not_found")
        refused("GET", "/v1/jobs/or%00ders", 404)
        # none of it changed the job
        assert s.call("GET", "/v1/jobs/orders/events")[1]["events"] == before
    finally:
        s.stop()


# --- the source stream --------------------------------------------------------

class CorruptingProxy(threading.Thread):
    """A loopback TCP proxy in front of PostgreSQL that forwards everything
    and, in the server's direction, rewrites the column count of the first
    pgoutput Insert message (inside CopyData 'w' XLogData) to 7: a message
    whose tuple disagrees with its relation, as a corrupted stream would."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.upstream = port
        self.corrupted = threading.Event()
        self.stopping = False

    def run(self):
        try:
            while not self.stopping:
                r, _, _ = select.select([self.listener], [], [], 0.2)
                if r:
                    client, _ = self.listener.accept()
                    server = socket.create_connection(("127.0.0.1", self.upstream))
                    threading.Thread(target=self.pump, args=(client, server),
                                     daemon=True).start()
        except OSError:
            return          # stop() closed the listener

    def pump(self, client, server):
        pending_negotiations = 0     # SSLRequest / GSSENCRequest: one byte each answers
        from_server = b""
        started = False
        try:
            while not self.stopping:
                r, _, _ = select.select([client, server], [], [], 0.2)
                if client in r:
                    data = client.recv(65536)
                    if not data:
                        return
                    if not started and len(data) == 8 and \
                            struct.unpack(">I", data[4:])[0] in (80877103, 80877104):
                        pending_negotiations += 1
                    else:
                        started = True
                    server.sendall(data)
                if server in r:
                    data = server.recv(65536)
                    if not data:
                        return
                    from_server += data
                    out = b""
                    while pending_negotiations and from_server:
                        out += from_server[:1]
                        from_server = from_server[1:]
                        pending_negotiations -= 1
                    while len(from_server) >= 5:
                        length = struct.unpack(">I", from_server[1:5])[0]
                        if len(from_server) < 1 + length:
                            break
                        msg = bytearray(from_server[:1 + length])
                        from_server = from_server[1 + length:]
                        # 'd' len | 'w' start(8) end(8) time(8) | 'I' relid(4) 'N' ncols(2)
                        if msg[:1] == b"d" and msg[5:6] == b"w" and msg[30:31] == b"I" \
                                and not self.corrupted.is_set():
                            msg[36:38] = struct.pack(">H", 7)
                            self.corrupted.set()
                        out += bytes(msg)
                    client.sendall(out)
        except OSError:
            return
        finally:
            client.close()
            server.close()

    def stop(self):
        self.stopping = True
        self.listener.close()


def test_malformed_pgoutput_message_stops_the_run_and_loses_nothing(db, cluster, make_penstock,
                                                                   target_db):
    """Row: source stream — a pgoutput message that disagrees with its
    relation. The run stops with the decoder's message naming the message,
    the relation and the byte (exit 1); nothing of that transaction is in the
    target; the next run over a sound connection applies it exactly once."""
    db.execute("CREATE TABLE items (id int PRIMARY KEY, v text)")
    target_db.execute("CREATE TABLE items (id int PRIMARY KEY, v text)")
    proxy = CorruptingProxy(cluster.port)
    proxy.start()
    try:
        # the source's identity includes its port: both runs go through the proxy
        url = f"postgresql://postgres@127.0.0.1:{proxy.port}/{db.name}"
        p = make_penstock("stream", tables={"include": ["public.items"]}, target=target_db.url)
        p.spec["source"]["url"] = url
        p.start()
        p.wait_streaming(db)
        db.execute("INSERT INTO items VALUES (1, 'one'), (2, 'two')")
        assert p.proc.wait(timeout=60) == 1, p.stderr()
        assert proxy.corrupted.is_set()
        line = one_error_line(p.stderr())
        assert "pgoutput Insert message: tuple has 7 columns but relation public.items" in line
        assert "has 2, at byte 6" in line
        assert target_db.value("SELECT count(*) FROM public.items") == 0
        # the proxy corrupts only once: the next run reads the same stream intact
        p.start()
        wait_for(lambda: target_db.value("SELECT count(*) FROM public.items") == 2, 60,
                 what="the transaction applied")
        assert p.stop() == 0
    finally:
        proxy.stop()
    assert pg_rows(target_db, "public.items") == pg_rows(db, "public.items")
