"""penstock server and penstock job: the REST API, the lifecycle, auth and
bad input, pause/resume and stop under writes, and a server killed with -9
while its job streams — all against real PostgreSQL, through the real binary.
"""
import json
import sqlite3
import os
import signal
import socket
import ssl
import subprocess
import urllib.error
import urllib.request

import pytest

from conftest import BIN, Writer, db_first, wait_equal, wait_for
from tlsca import CA, key_body_lines

W_TABLES = ["public.w_items", "public.w_history"]
TOKEN = "test-token-0123456789abcdef"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A penstock server on a free loopback port with its own state dir."""

    def __init__(self, state_dir, env_extra=None):
        self.state_dir = state_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = dict(os.environ, PENSTOCK_API_TOKEN=TOKEN, PENSTOCK_SERVER=self.url,
                        **(env_extra or {}))
        self.proc = None
        self.log = state_dir.parent / f"server-{self.port}.log"
        self.context = None      # TlsServer: the TLS context that verifies the server

    def start(self):
        self.state_dir.mkdir(exist_ok=True)
        self.proc = subprocess.Popen(
            [BIN, "server", "--listen", f"127.0.0.1:{self.port}", "--state-dir", str(self.state_dir)],
            env=self.env, stdout=subprocess.DEVNULL, stderr=open(self.log, "a"))
        wait_for(self.healthy, 20, what="server to answer /healthz")
        return self

    def healthy(self, token=TOKEN):
        assert self.proc.poll() is None, self.logtext()
        try:
            return self.call("GET", "/healthz", token=token)[0] == 200
        except (urllib.error.URLError, ConnectionError):
            return False

    def logtext(self):
        return self.log.read_text() if self.log.exists() else ""

    def call(self, method, path, body=None, token=TOKEN, raw=None):
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(self.url + path, data=data, method=method)
        if token is not None:
            req.add_header("Authorization", f"Bearer {token}")
        req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=120, context=self.context) as r:
                text = r.read().decode()
                status = r.status
        except urllib.error.HTTPError as e:
            text = e.read().decode()
            status = e.code
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text

    def job(self, name):
        status, j = self.call("GET", f"/v1/jobs/{name}")
        assert status == 200, j
        return j

    def wait_state(self, name, *states, timeout=90):
        last = {}

        def settled():
            last["job"] = self.job(name)
            return last["job"]["state"] in states
        try:
            wait_for(settled, timeout, interval=0.1, what=f"job {name} to be {'/'.join(states)}")
        except AssertionError as e:
            raise AssertionError(f"{e}; job: {json.dumps(last.get('job'))[:3000]}") from None
        return last["job"]

    def cli(self, *args, check=None, env_extra=None):
        env = dict(self.env, **(env_extra or {}))
        p = subprocess.run([BIN, "job", *args], env=env, capture_output=True, text=True, timeout=180)
        if check is not None:
            assert p.returncode == check, (p.returncode, p.stdout, p.stderr)
        return p

    def stop(self, keep_jobs=False):
        """SIGTERM; first deletes every job (releasing its slot, which the
        session's shared cluster would otherwise keep) unless keep_jobs."""
        if self.proc and self.proc.poll() is None:
            if not keep_jobs:
                for j in self.call("GET", "/v1/jobs")[1]["jobs"]:
                    self.call("DELETE", f"/v1/jobs/{j['id']}")
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(60)

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)


class TlsServer(Server):
    """A penstock server with --tls-cert/--tls-key, called over https."""

    def __init__(self, state_dir, cert, key, cafile, env_extra=None, token_from_file=False):
        super().__init__(state_dir, env_extra)
        self.cert, self.key, self.cafile = cert, key, cafile
        self.url = f"https://127.0.0.1:{self.port}"
        self.env["PENSTOCK_SERVER"] = self.url
        self.env["PENSTOCK_CACERT"] = str(cafile)
        self.context = ssl.create_default_context(cafile=str(cafile))
        if token_from_file:
            del self.env["PENSTOCK_API_TOKEN"]
            self.env["PENSTOCK_STATE_DIR"] = str(state_dir)

    def start(self):
        self.state_dir.mkdir(exist_ok=True)
        self.proc = subprocess.Popen(
            [BIN, "server", "--listen", f"127.0.0.1:{self.port}", "--state-dir", str(self.state_dir),
             "--tls-cert", str(self.cert), "--tls-key", str(self.key)],
            env=self.env, stdout=subprocess.DEVNULL, stderr=open(self.log, "a"))
        wait_for(self.healthy, 20, what="server to answer /healthz over https")
        return self


@pytest.fixture
def server(tmp_path, request):
    """A penstock server, torn down before the test's `db` (conftest.db_first)."""
    db_first(request)
    s = Server(tmp_path / "state").start()
    yield s
    s.stop()


def spec_for(db, target_url, name="orders", **extra):
    s = {"name": name, "type": "sync", "source": {"url": db.url}, "target": {"url": target_url}}
    s.update(extra)
    return s


def slot_exists(db, name):
    return db.value("SELECT count(*) FROM pg_replication_slots WHERE slot_name = %s", (name,)) == 1


def start_streaming(server, spec, timeout=120):
    """Creates and starts the job of spec; returns once it streams."""
    status, job = server.call("POST", "/v1/jobs", spec)
    assert status == 201, job
    assert server.call("POST", f"/v1/jobs/{spec['name']}/start")[0] == 202
    wait_for(lambda: server.job(spec["name"])["phase"] == "streaming", timeout, what="streaming")


def transition_events(server, name):
    events = server.call("GET", f"/v1/jobs/{name}/events")[1]["events"]
    return [e for e in events if e["kind"] == "transition"]


def transitions(server, name):
    """The states the job went through, in order."""
    return [e["to"] for e in transition_events(server, name)]


# --- auth, bad input --------------------------------------------------------

def test_every_request_needs_the_token_and_a_refused_one_changes_nothing(server, db, target_db):
    for token in (None, "wrong-token-0123456789"):
        for method, path, body in [("GET", "/v1/jobs", None), ("GET", "/healthz", None),
                                   ("GET", "/metrics", None),
                                   ("POST", "/v1/jobs", spec_for(db, target_db.url))]:
            status, reply = server.call(method, path, body, token=token)
            assert status == 401, (method, path, reply)
            assert reply["error"]["code"] == "unauthorized"
            assert TOKEN not in json.dumps(reply)
    status, reply = server.call("GET", "/v1/jobs")
    assert status == 200 and reply["jobs"] == []


def test_malformed_bodies_are_400_with_the_field_path(server, db, target_db):
    cases = [
        (b"{not json", None, "invalid_spec"),
        (json.dumps(dict(spec_for(db, target_db.url), colour="red")).encode(), "colour", "invalid_spec"),
        (json.dumps(dict(spec_for(db, target_db.url), snapshot={"parallel": "four"})).encode(),
         "snapshot.parallel", "invalid_spec"),
        (json.dumps(dict(spec_for(db, target_db.url), tables={"include": ["public.a", 3]})).encode(),
         "tables.include[1]", "invalid_spec"),
        (json.dumps({"type": "sync"}).encode(), None, "invalid_spec"),
    ]
    for raw, field, code in cases:
        status, reply = server.call("POST", "/v1/jobs", raw=raw)
        assert status == 400, (raw, reply)
        assert reply["error"]["code"] == code
        if field:
            assert reply["error"]["field"] == field, reply
            assert field in reply["error"]["message"]
    # too big: 413, not parsed
    status, reply = server.call("POST", "/v1/jobs", raw=b"[" + b"1," * (600 * 1024) + b"1]")
    assert status == 413, reply
    # an action body with an unknown field
    assert server.call("POST", "/v1/jobs", spec_for(db, target_db.url))[0] == 201
    status, reply = server.call("POST", "/v1/jobs/orders/pause", {"force": True})
    assert status == 400 and reply["error"]["field"] == "force"
    # a merge patch with a wrong type names the field
    status, reply = server.call("PATCH", "/v1/jobs/orders", {"snapshot": {"chunk_rows": "x"}})
    assert status == 400 and reply["error"]["field"] == "snapshot.chunk_rows", reply
    # unknown routes and methods
    assert server.call("GET", "/v1/nothing")[0] == 404
    assert server.call("GET", "/v1/jobs/nope")[0] == 404
    assert server.call("PUT", "/v1/jobs/orders")[0] == 405
    assert server.call("POST", "/v1/jobs/orders/explode")[0] == 404
    # nothing of this changed the job
    events = server.call("GET", "/v1/jobs/orders/events")[1]["events"]
    assert [e["to"] for e in events] == ["created"]


def test_duplicate_name_is_409(server, db, target_db):
    assert server.call("POST", "/v1/jobs", spec_for(db, target_db.url))[0] == 201
    status, reply = server.call("POST", "/v1/jobs", spec_for(db, target_db.url))
    assert status == 409 and "exists already" in reply["error"]["message"]


def test_secrets_never_appear_in_answers(tmp_path, db, cluster):
    """The source's password, the API token and the TLS private key of
    --tls-key: in no answer, no log line, no CLI output, no state file."""
    secret = "s3cr3t-Pa55word-xyz"
    cluster.connect().cursor().execute(f"CREATE ROLE app LOGIN REPLICATION PASSWORD '{secret}'")
    ca = CA(tmp_path / "ca")
    cert, key = ca.issue("api", ["127.0.0.1"])
    key_lines = key_body_lines(key)
    assert len(key_lines) > 10   # the test looks for something real
    s = TlsServer(tmp_path / "state", cert, key, ca.cert, env_extra={"APP_PW": secret}).start()
    try:
        spec = spec_for(db, "jsonl://" + str(tmp_path / "out"))
        spec["source"] = {"url": f"postgresql://app@127.0.0.1:{cluster.port}/{db.name}",
                          "password_env": "APP_PW"}
        assert s.call("POST", "/v1/jobs", spec)[0] == 201
        s.call("POST", "/v1/jobs/orders/check")
        s.wait_state("orders", "ready", "check_failed")
        texts = [json.dumps(s.call("GET", p)[1]) for p in
                 ("/v1/jobs", "/v1/jobs/orders", "/v1/jobs/orders/events")]
        texts.append(s.call("GET", "/metrics")[1])
        texts.append(s.logtext())
        texts.append(s.cli("show", "orders").stdout)
        texts.append(s.cli("list", "--json").stdout)
        s.stop()   # and what the server left behind at exit
        texts.append(s.logtext())
        texts += [f.read_bytes().decode("latin-1") for f in s.state_dir.rglob("*") if f.is_file()]
        for t in texts:
            assert secret not in t
            assert TOKEN not in t
            for line in key_lines:
                assert line not in t, "a line of the TLS private key leaked"
        assert "APP_PW" in texts[1]   # the variable's name is shown, its value never
    finally:
        s.stop()


# --- lifecycle --------------------------------------------------------------

def test_every_transition_and_every_refusal_through_the_api(server, db, target_db):
    Writer.create_tables(db, rows=200)
    status, job = server.call("POST", "/v1/jobs", spec_for(db, target_db.url))
    assert status == 201 and job["state"] == "created"
    assert set(job) >= {"id", "name", "type", "state", "phase", "health", "cdc_state", "positions",
                        "lag", "tables", "last_error"}

    def refused(action, state):
        status, reply = server.call("POST", f"/v1/jobs/orders/{action}")
        assert status == 409, (action, reply)
        assert reply["error"]["state"] == state
        assert action not in reply["error"]["allowed_actions"]
        assert server.job("orders")["state"] == state   # nothing changed

    for a in ("pause", "resume", "stop"):
        refused(a, "created")
    # created -> checking -> ready
    assert server.call("POST", "/v1/jobs/orders/check")[0] == 202
    job = server.wait_state("orders", "ready")
    assert job["checks"]["passed"] is True
    for a in ("pause", "resume", "stop"):
        refused(a, "ready")
    # ready -> starting -> running
    assert server.call("POST", "/v1/jobs/orders/start")[0] == 202
    job = server.wait_state("orders", "running")
    wait_for(lambda: server.job("orders")["phase"] == "streaming", 60, what="streaming")
    for a in ("start", "resume", "check"):
        refused(a, "running")
    # running -> draining -> paused
    assert server.call("POST", "/v1/jobs/orders/pause")[0] == 202
    job = server.wait_state("orders", "paused")
    assert slot_exists(db, "penstock_orders")
    for a in ("pause", "start", "check"):
        refused(a, "paused")
    # paused -> starting -> running
    assert server.call("POST", "/v1/jobs/orders/resume")[0] == 202
    server.wait_state("orders", "running")
    # running -> stopping -> stopped
    assert server.call("POST", "/v1/jobs/orders/stop")[0] == 202
    server.wait_state("orders", "stopped")
    assert not slot_exists(db, "penstock_orders")
    assert db.value("SELECT count(*) FROM pg_publication WHERE pubname = 'penstock_orders'") == 0
    for a in ("pause", "resume", "stop"):
        refused(a, "stopped")
    # the history lists every transition with actor and reason
    events = server.call("GET", "/v1/jobs/orders/events")[1]["events"]
    path = [e["to"] for e in events if e["kind"] == "transition"]
    assert path == ["created", "checking", "ready", "starting", "running", "draining", "paused",
                    "starting", "running", "stopping", "stopped"], path
    assert all(e["actor"] in ("api", "job") and e["reason"] and e["at"] for e in events)
    # delete from stopped: the job is gone, target data stays
    rows = target_db.value("SELECT count(*) FROM w_items")
    status, reply = server.call("DELETE", "/v1/jobs/orders")
    assert status == 200 and reply["target_data"] == "left as it is"
    assert server.call("GET", "/v1/jobs/orders")[0] == 404
    assert target_db.value("SELECT count(*) FROM w_items") == rows > 0


def test_failed_prechecks_block_start(server, db, target_db):
    db.execute("CREATE TABLE nokey (a int, b text)")
    db.execute("INSERT INTO nokey VALUES (1, 'x')")
    # tables.keyless refuse: without it the table is captured insert-only
    server.call("POST", "/v1/jobs", spec_for(db, target_db.url, tables={"keyless": "refuse"}))
    server.call("POST", "/v1/jobs/orders/start")
    job = server.wait_state("orders", "check_failed")
    failed = [i for i in job["checks"]["items"] if i["result"] == "failed" and i["level"] == "error"]
    assert [i["id"] for i in failed] == ["source.replica_identity"], failed
    assert "REPLICA IDENTITY" in failed[0]["fix"]
    assert not slot_exists(db, "penstock_orders")   # nothing was started
    # fixing the cause and starting again works
    db.execute("ALTER TABLE nokey REPLICA IDENTITY FULL")
    server.call("POST", "/v1/jobs/orders/start")
    server.wait_state("orders", "running")
    wait_equal(db, target_db, ["public.nokey"])


def test_delete_a_running_job_drops_slot_and_publication(server, db, target_db):
    Writer.create_tables(db, rows=100)
    server.call("POST", "/v1/jobs", spec_for(db, target_db.url))
    server.call("POST", "/v1/jobs/orders/start")
    wait_for(lambda: server.job("orders")["phase"] == "streaming", 90, what="streaming")
    assert slot_exists(db, "penstock_orders")
    status, reply = server.call("DELETE", "/v1/jobs/orders")
    assert status == 200, reply
    assert "dropped slot penstock_orders" in reply["removed"]
    assert "removed the checkpoint" in reply["removed"]
    assert not slot_exists(db, "penstock_orders")
    assert db.value("SELECT count(*) FROM pg_publication WHERE pubname = 'penstock_orders'") == 0
    assert target_db.value("SELECT count(*) FROM penstock.checkpoint") == 0
    assert target_db.value("SELECT count(*) FROM w_items") == 100
    assert server.call("GET", "/v1/jobs")[1]["jobs"] == []


def test_pause_drains_and_resume_catches_up_under_writes(server, db, target_db):
    Writer.create_tables(db, rows=500)
    writer = Writer(db)
    writer.start()
    try:
        server.call("POST", "/v1/jobs", spec_for(db, target_db.url))
        server.call("POST", "/v1/jobs/orders/start")
        wait_for(lambda: server.job("orders")["phase"] == "streaming", 90, what="streaming")
        done = writer.txns
        wait_for(lambda: writer.txns > done + 30, 60, what="source writes")
        server.call("POST", "/v1/jobs/orders/pause")
        paused = server.wait_state("orders", "paused")
        assert paused["cdc_state"] == "TFEND"
        done = writer.txns
        wait_for(lambda: writer.txns > done + 30, 60, what="writes while paused")
        assert slot_exists(db, "penstock_orders")
        server.call("POST", "/v1/jobs/orders/resume")
        server.wait_state("orders", "running")
        done = writer.txns
        wait_for(lambda: writer.txns > done + 30, 60, what="writes after resume")
    finally:
        writer.stop()
    wait_equal(db, target_db, W_TABLES)
    job = server.job("orders")
    assert job["positions"]["applied"] and job["lag"]["seconds"] < 60


def test_metrics_and_health(server, db, target_db):
    Writer.create_tables(db, rows=300)
    db.execute("ANALYZE")
    server.call("POST", "/v1/jobs", spec_for(db, target_db.url))
    server.call("POST", "/v1/jobs/orders/start")
    wait_for(lambda: server.job("orders")["phase"] == "streaming", 90, what="streaming")
    db.execute("INSERT INTO w_items VALUES (9999, 1, 'm')")
    wait_for(lambda: target_db.value("SELECT count(*) FROM w_items WHERE id = 9999") == 1, 30)
    wait_for(lambda: "penstock_job_changes_applied_total{job=\"orders\"} 1" in server.call("GET", "/metrics")[1],
             30, what="the applied change in /metrics")
    text = server.call("GET", "/metrics")[1]
    assert 'penstock_job_state{job="orders",state="running"} 1' in text
    assert 'penstock_job_phase{job="orders",phase="streaming"} 1' in text
    assert 'penstock_snapshot_rows_copied{job="orders",table="public.w_items"} 300' in text
    assert 'penstock_snapshot_units_done{job="orders",table="public.w_items"} 1' in text
    assert "penstock_job_lag_seconds{job=\"orders\"}" in text
    assert "penstock_job_slot_retained_bytes{job=\"orders\"}" in text
    status, health = server.call("GET", "/healthz")
    assert status == 200 and health["status"] == "ok" and health["jobs"] == 1
    job = server.job("orders")
    t = {f"{x['schema']}.{x['name']}": x for x in job["tables"]}
    assert t["public.w_items"]["rows_copied"] == 300 and t["public.w_items"]["finished"]


def test_modify_rules(server, db, target_db):
    Writer.create_tables(db, rows=50)
    server.call("POST", "/v1/jobs", spec_for(db, target_db.url))
    status, job = server.call("PATCH", "/v1/jobs/orders", {"snapshot": {"parallel": 2}})
    assert status == 200 and job["spec"]["snapshot"]["parallel"] == 2
    status, reply = server.call("PATCH", "/v1/jobs/orders", {"name": "other"})
    assert status == 400 and reply["error"]["field"] == "name"
    server.call("POST", "/v1/jobs/orders/start")
    server.wait_state("orders", "running")
    server.call("POST", "/v1/jobs/orders/pause")
    server.wait_state("orders", "paused")
    status, reply = server.call("PATCH", "/v1/jobs/orders", {"target": {"url": db.url}})
    assert status == 409 and reply["error"]["field"] == "target.url"
    status, job = server.call("PATCH", "/v1/jobs/orders", {"snapshot": {"parallel": 3}})
    assert status == 200 and job["spec"]["snapshot"]["parallel"] == 3 and job["state"] == "paused"
    server.call("POST", "/v1/jobs/orders/resume")
    server.wait_state("orders", "running")


# --- restarts ---------------------------------------------------------------

def test_server_killed_with_9_resumes_its_running_job_with_no_loss(tmp_path, db, target_db):
    Writer.create_tables(db, rows=2000)
    db.execute("ANALYZE")
    s = Server(tmp_path / "state").start()
    writer = Writer(db)
    writer.start()
    try:
        s.call("POST", "/v1/jobs", dict(spec_for(db, target_db.url),
                                        snapshot={"chunk_rows": 1000, "parallel": 2}))
        s.call("POST", "/v1/jobs/orders/start")
        wait_for(lambda: s.job("orders")["phase"] == "streaming", 90, what="streaming")
        done = writer.txns
        wait_for(lambda: writer.txns > done + 50, 60, what="source writes")
        s.kill()
        done = writer.txns
        wait_for(lambda: writer.txns > done + 50, 60, what="writes while the server is down")
        # While the restarted server loads its jobs, it answers 503 "starting",
        # never "no job 'orders'": the test holds the store's write lock, so the
        # load (which records the job's restart) waits, with the port open.
        store = sqlite3.connect(tmp_path / "state" / "penstock.db", isolation_level=None)
        store.execute("BEGIN IMMEDIATE")
        s = Server(tmp_path / "state")
        s.proc = subprocess.Popen(
            [BIN, "server", "--listen", f"127.0.0.1:{s.port}", "--state-dir", str(s.state_dir)],
            env=s.env, stdout=subprocess.DEVNULL, stderr=open(s.log, "a"))

        def answers():
            assert s.proc.poll() is None, s.logtext()
            try:
                return s.call("GET", "/v1/jobs/orders")
            except (urllib.error.URLError, ConnectionError):
                return None
        status, body = wait_for(answers, 20, what="the restarted server to answer")
        assert status == 503 and body["error"]["code"] == "starting", (status, body)
        assert s.call("GET", "/healthz")[0] == 503
        store.execute("COMMIT")
        store.close()
        wait_for(s.healthy, 20, what="server to answer /healthz")
        s.wait_state("orders", "running")
        events = s.call("GET", "/v1/jobs/orders/events")[1]["events"]
        assert any(e["actor"] == "server" and e["to"] == "starting" for e in events), events
        done = writer.txns
        wait_for(lambda: writer.txns > done + 50, 60, what="writes after the restart")
        writer.stop()
        wait_equal(db, target_db, W_TABLES)
        # no duplicate in the table without a key
        assert target_db.value("SELECT count(*) FROM w_history") == \
            db.value("SELECT count(*) FROM w_history")
        # a graceful server stop keeps the job's state: it runs on the next start
        s.stop(keep_jobs=True)
        s = Server(tmp_path / "state").start()
        s.wait_state("orders", "running")
    finally:
        writer.halt.set()
        s.stop()


# --- the CLI ----------------------------------------------------------------

def test_cli_drives_a_job_through_its_life(server, db, target_db, tmp_path):
    Writer.create_tables(db, rows=100)
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(spec_for(db, target_db.url)))
    p = server.cli("create", str(spec), check=0)
    assert "created job orders" in p.stdout
    p = server.cli("list", check=0)
    assert "orders" in p.stdout and "created" in p.stdout
    p = server.cli("check", "orders", check=0)
    assert "job orders is ready" in p.stdout and "source.wal_level" in p.stdout
    server.cli("start", "orders", "--wait", check=0)
    wait_for(lambda: server.job("orders")["phase"] == "streaming", 60, what="streaming")
    p = server.cli("show", "orders", check=0)
    for text in ("state       running, phase streaming", "CDC marker", "positions   read",
                 "public.w_items", "last error  none"):
        assert text in p.stdout, p.stdout
    p = server.cli("show", "orders", "--json", check=0)
    assert json.loads(p.stdout)["state"] == "running"
    p = server.cli("resume", "orders", check=5)   # refused: running
    assert "allowed:" in p.stderr
    server.cli("pause", "orders", "--wait", check=0)
    server.cli("resume", "orders", "--wait", check=0)
    server.cli("stop", "orders", "--wait", check=0)
    assert not slot_exists(db, "penstock_orders")
    p = server.cli("events", "orders", check=0)
    assert "running -> draining" in p.stdout and "stopping -> stopped" in p.stdout
    p = server.cli("delete", "orders", check=0)
    assert "deleted job orders" in p.stdout
    server.cli("show", "orders", check=2)
    # a wrong token and an unreachable server are clear errors
    p = server.cli("list", check=2, env_extra={"PENSTOCK_API_TOKEN": "wrong-token-0123456789"})
    assert "token is wrong" in p.stderr
    p = server.cli("list", "--server", f"http://127.0.0.1:{free_port()}", check=1)
    assert "cannot reach the penstock server" in p.stderr
    p = server.cli("create", str(tmp_path / "missing.json"), check=2)
    assert "cannot read" in p.stderr


def test_token_file_is_generated_0600_and_used_by_the_cli(tmp_path, db, target_db):
    s = Server(tmp_path / "state")
    del s.env["PENSTOCK_API_TOKEN"]
    s.proc = subprocess.Popen([BIN, "server", "--listen", f"127.0.0.1:{s.port}", "--state-dir",
                               str(s.state_dir)], env=s.env, stdout=subprocess.DEVNULL,
                              stderr=open(s.log, "a"))
    try:
        token_file = s.state_dir / "api-token"
        wait_for(token_file.exists, 20, what="the token file")
        assert oct(token_file.stat().st_mode & 0o777) == "0o600"
        token = token_file.read_text().strip()
        assert len(token) == 64
        wait_for(lambda: s.healthy(token), 20, what="server")
        assert s.call("GET", "/healthz", token=TOKEN)[0] == 401
        p = subprocess.run([BIN, "job", "list", "--state-dir", str(s.state_dir)], env=s.env,
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0 and "no jobs" in p.stdout, p.stderr
        # a second server on the same state directory is refused
        p = subprocess.run([BIN, "server", "--listen", f"127.0.0.1:{free_port()}", "--state-dir",
                            str(s.state_dir)], env=s.env, capture_output=True, text=True, timeout=60)
        assert p.returncode == 2 and "another penstock server" in p.stderr
    finally:
        s.stop(keep_jobs=True)   # it has none, and its token is not TOKEN


# --- compare as a job action ---------------------------------------------------

def test_job_compare_finds_and_repairs_differences_and_keeps_results(server, db, target_db):
    Writer.create_tables(db, rows=300)
    server.call("POST", "/v1/jobs", spec_for(db, target_db.url))
    server.call("POST", "/v1/jobs/orders/start")
    wait_for(lambda: server.job("orders")["phase"] == "streaming", 90, what="streaming")
    status, reply = server.call("POST", "/v1/jobs/orders/compare", {"mode": "full"})
    assert status == 200, reply
    assert reply["compare"]["equal"] is True and reply["compare"]["job"] == "orders"
    # the target drifts behind the job's back
    target_db.execute("UPDATE w_items SET v = -1 WHERE id = 7")
    target_db.execute("DELETE FROM w_items WHERE id = 8")
    p = server.cli("compare", "orders", "--tables", "public.w_items", check=6)
    assert "DIFFERENT" in p.stdout and '"id":"7"' in p.stdout and '"id":"8"' in p.stdout, p.stdout
    status, reply = server.call("POST", "/v1/jobs/orders/compare",
                                {"tables": ["public.w_items"], "repair": True})
    assert status == 200 and reply["compare"]["consistent"] is True, reply
    wait_equal(db, target_db, W_TABLES)
    p = server.cli("compare", "orders", "--mode", "count", check=0)
    assert "equal" in p.stdout
    status, reply = server.call("GET", "/v1/jobs/orders/compares")
    results = reply["compares"]
    assert [r["result"]["equal"] for r in results] == [True, False, False, True]
    assert [r["result"]["mode"] for r in results] == ["full", "full", "full", "count"]
    diffs = results[1]["result"]["tables"][0]["differences"]
    assert sorted((d["kind"], d["key"]["id"]) for d in diffs) == [("different", "7"),
                                                                   ("missing_in_target", "8")]
    events = server.call("GET", "/v1/jobs/orders/events")[1]["events"]
    assert sum(1 for e in events if e["kind"] == "compare") == 4
    # bad bodies name the field
    status, reply = server.call("POST", "/v1/jobs/orders/compare", {"mode": "fast"})
    assert status == 400 and reply["error"]["field"] == "mode"


# --- states that are hard to reach by hand ------------------------------------

def test_a_checking_job_cannot_be_modified_and_can_be_deleted(server, db, target_db):
    """The prechecks read the spec while they run: PATCH waits (409) until
    they settle; DELETE works meanwhile. The source is a socket that accepts
    and never answers, so the check stays in `checking` for its timeout."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    port = silent.getsockname()[1]
    try:
        spec = spec_for(db, target_db.url)
        spec["source"]["url"] = f"postgresql://postgres@127.0.0.1:{port}/x?connect_timeout=4"
        assert server.call("POST", "/v1/jobs", spec)[0] == 201
        assert server.call("POST", "/v1/jobs/orders/check")[0] == 202
        status, reply = server.call("PATCH", "/v1/jobs/orders", {"snapshot": {"parallel": 2}})
        assert status == 409 and reply["error"]["state"] == "checking", reply
        assert "modify" not in reply["error"]["allowed_actions"]
        assert "modify" not in server.job("orders")["allowed_actions"]
        job = server.wait_state("orders", "check_failed", timeout=60)
        assert [i["result"] for i in job["checks"]["items"] if i["id"] == "source.connect"] == ["failed"]
        assert "parallel" not in job["spec"].get("snapshot", {})
        # settled: now the spec may change, and the job is back to created
        status, job = server.call("PATCH", "/v1/jobs/orders", {"snapshot": {"parallel": 2}})
        assert status == 200 and job["state"] == "created"
        assert server.call("POST", "/v1/jobs/orders/check")[0] == 202
        status, reply = server.call("DELETE", "/v1/jobs/orders")
        assert status == 200 and "no slot" in reply["removed"], reply
        assert server.call("GET", "/v1/jobs/orders")[0] == 404
    finally:
        silent.close()


def test_permanent_failure_refusals_and_stop(server, db, target_db):
    """A table the job cannot replicate (no key, no replica identity) with its
    precheck skipped: the run fails for good; only stop, delete and modify
    are allowed, and stop leaves nothing on the source."""
    db.execute("CREATE TABLE nokey (a int)")
    spec = spec_for(db, target_db.url, checks={"skip": ["source.replica_identity"]}, tables={"keyless": "refuse"})
    server.call("POST", "/v1/jobs", spec)
    server.call("POST", "/v1/jobs/orders/start")
    job = server.wait_state("orders", "failed_permanently")
    assert job["last_error"]["retryable"] is False and "nokey" in job["last_error"]["message"]
    assert job["last_error"]["hint"]
    assert set(job["allowed_actions"]) == {"recover", "stop", "delete", "modify"}
    for action in ("start", "pause", "resume", "check"):
        status, reply = server.call("POST", f"/v1/jobs/orders/{action}")
        assert status == 409 and reply["error"]["state"] == "failed_permanently", (action, reply)
    p = server.cli("show", "orders", check=0)
    assert "what to do" in p.stdout and "nokey" in p.stdout
    server.call("POST", "/v1/jobs/orders/stop")
    server.wait_state("orders", "stopped")
    assert not slot_exists(db, "penstock_orders")
    assert db.value("SELECT count(*) FROM pg_publication WHERE pubname = 'penstock_orders'") == 0


def test_a_retryable_failure_is_retried_and_the_job_runs_again(tmp_path, db, target_db):
    """An injected error while reading (as a lost connection would be) moves
    the job to failed; it retries by itself and ends equal to the source."""
    Writer.create_tables(db, rows=100)
    s = Server(tmp_path / "state", env_extra={"PENSTOCK_FAULT": "source.read:error@3"}).start()
    try:
        s.call("POST", "/v1/jobs", spec_for(db, target_db.url))
        s.call("POST", "/v1/jobs/orders/start")
        wait_for(lambda: s.job("orders")["phase"] == "streaming", 90, what="streaming")
        for i in range(5):   # the third item read fails
            db.execute(f"INSERT INTO w_items VALUES ({5000 + i}, 1, 'r')")
        wait_equal(db, target_db, W_TABLES)
        job = s.wait_state("orders", "running")
        path = [e["to"] for e in s.call("GET", "/v1/jobs/orders/events")[1]["events"]
                if e["kind"] == "transition"]
        assert path[-3:] == ["failed", "starting", "running"], path
        assert job["last_error"]["retryable"] is True and job["last_error"]["code"] == "injected_fault"
    finally:
        s.stop()
