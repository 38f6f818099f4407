"""What an operator alerts on (issue 20): /metrics passes `promtool check
metrics` and holds the figures of a running job (changes by table and
operation, the apply histogram, positions, the slot's retention and the
server's limit, compare results, errors by class); the example alert rules
and dashboard in contrib/ use only metric names a live server exposes;
/readyz; job webhooks, signed and retried, against a receiver started here;
systemd's READY=1 and watchdog pings through a fake NOTIFY_SOCKET.
"""
import hashlib
import hmac
import http.server
import json
import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import threading

import test_server as ts
from test_server import server  # noqa: F401
from conftest import ROOT, Writer, wait_for, lsn_int

PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
RULES = ROOT / "contrib" / "prometheus" / "penstock-alerts.yml"
RULE_TESTS = ROOT / "contrib" / "prometheus" / "penstock-alerts.test.yml"
SCRAPE = ROOT / "contrib" / "prometheus" / "prometheus.yml"
DASHBOARD = ROOT / "contrib" / "grafana" / "penstock.json"


def families(text):
    """{name: type} of every family a /metrics page declares."""
    return dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))


def sample(text, name, **labels):
    """The value of the one sample of name with exactly these labels."""
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    m = re.search(r"^" + re.escape(f"{name}{{{want}}}") + r" (\S+)$", text, re.M)
    return float(m.group(1)) if m else None


def metric_names(text):
    """The penstock_* names a rules file or dashboard uses, histogram series
    folded into their family."""
    names = set(re.findall(r"\b(penstock_[a-z0-9_]+)", text))
    return {re.sub(r"_(bucket|sum|count)$", "", n) if n.startswith(
        "penstock_job_apply_batch_duration_seconds") else n for n in names}


def test_metrics_an_operator_alerts_on(server, db, target_db, cluster):
    Writer.create_tables(db, rows=400)
    db.execute("ANALYZE")
    ts.start_streaming(server, ts.spec_for(db, target_db.url))
    db.execute("INSERT INTO w_items SELECT g, 1, 'm' FROM generate_series(5001, 5030) g")
    db.execute("UPDATE w_items SET v = v + 1 WHERE id <= 7")
    db.execute("DELETE FROM w_items WHERE id BETWEEN 8 AND 10")
    wait_for(lambda: server.job("orders")["counters"]["changes_applied"] == 40, 60,
             what="the 40 changes applied")
    status, rep = server.call("POST", "/v1/jobs/orders/compare", {"mode": "count"})
    assert status == 200 and rep["compare"]["consistent"], rep
    # the source's figures are sampled every 5 s
    wait_for(lambda: 'penstock_job_slot_status{job="orders",status=' in server.call("GET", "/metrics")[1],
             30, what="the slot's status in /metrics")
    text = server.call("GET", "/metrics")[1]

    p = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True)
    assert p.returncode == 0 and not p.stdout.strip() and not p.stderr.strip(), (p.stdout, p.stderr)

    assert sample(text, "penstock_job_state", job="orders", state="running") == 1
    assert sample(text, "penstock_job_state", job="orders", state="failed") == 0
    assert sample(text, "penstock_job_health", job="orders", health="ok") == 1
    assert sample(text, "penstock_job_phase", job="orders", phase="streaming") == 1
    for op, n in [("insert", 30), ("update", 7), ("delete", 3), ("truncate", 0)]:
        assert sample(text, "penstock_table_changes_total", job="orders", table="public.w_items",
                      op=op) == n, op
    assert sample(text, "penstock_table_change_bytes_total", job="orders", table="public.w_items",
                  op="insert") > 0
    batches = sample(text, "penstock_job_apply_batch_duration_seconds_count", job="orders")
    assert batches >= 1
    assert sample(text, "penstock_job_apply_batch_duration_seconds_bucket", job="orders",
                  le="+Inf") == batches
    assert sample(text, "penstock_job_changes_applied_total", job="orders") == 40
    job = server.job("orders")
    assert sample(text, "penstock_job_position_bytes", job="orders", position="applied") == \
        lsn_int(job["positions"]["applied"])
    assert sample(text, "penstock_snapshot_rows_copied", job="orders", table="public.w_items") == 400
    assert sample(text, "penstock_snapshot_units_planned", job="orders", table="public.w_items") == 1
    assert sample(text, "penstock_job_compare_consistent", job="orders", mode="count") == 1
    assert sample(text, "penstock_job_compare_rows", job="orders", table="public.w_items",
                  result="missing_in_target") == 0
    assert 'penstock_job_errors_total{job="orders",class="connection"} 0' in text
    assert sample(text, "penstock_job_retries_total", job="orders") == 0
    assert sample(text, "penstock_job_slot_retained_bytes", job="orders") >= 0
    assert sample(text, "penstock_job_slot_status", job="orders", status="reserved") == 1
    assert sample(text, "penstock_job_info", job="orders", id=job["id"], type="sync",
                  source="postgresql", target="postgresql") == 1

    # the slot-retention alert's figures: the server's limit and what may
    # still be written appear once the source sets max_slot_wal_keep_size
    assert sample(text, "penstock_job_slot_retention_limit_bytes", job="orders") is None
    admin = cluster.connect()
    try:
        admin.cursor().execute("ALTER SYSTEM SET max_slot_wal_keep_size = '1GB'")
        admin.cursor().execute("SELECT pg_reload_conf()")
        wait_for(lambda: sample(server.call("GET", "/metrics")[1],
                                "penstock_job_slot_retention_limit_bytes", job="orders") == 1 << 30,
                 30, what="the slot's limit in /metrics")
        text = server.call("GET", "/metrics")[1]
        safe = sample(text, "penstock_job_slot_safe_bytes", job="orders")
        kept = sample(text, "penstock_job_slot_retained_bytes", job="orders")
        assert safe is not None and 0 < safe <= (1 << 30) + (64 << 20)
        assert kept is not None and kept < 1 << 30
        r = server.job("orders")["retention"]
        assert r["limit_bytes"] == 1 << 30 and r["status"] == "reserved"
        show = server.cli("show", "orders", check=0).stdout
        assert "retention   limit 1.0 GiB" in show and "status reserved" in show
    finally:
        admin.cursor().execute("ALTER SYSTEM RESET max_slot_wal_keep_size")
        admin.cursor().execute("SELECT pg_reload_conf()")
        admin.close()

    # contrib/ uses only names this server exposes, and promtool accepts it
    names = families(text)
    for path in (RULES, DASHBOARD):
        used = metric_names(path.read_text())
        assert used, path
        assert used <= set(names), (path.name, sorted(used - set(names)))
    p = subprocess.run([PROMTOOL, "check", "rules", str(RULES)], capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
    p = subprocess.run([PROMTOOL, "test", "rules", str(RULE_TESTS)], capture_output=True, text=True,
                       cwd=RULE_TESTS.parent)
    assert p.returncode == 0, p.stdout + p.stderr
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for pnl in dashboard["panels"] for t in pnl.get("targets", [])]
    assert exprs and all("penstock_" in e for e in exprs)


def test_the_example_scrape_config_is_valid(tmp_path):
    token = tmp_path / "api-token"
    token.write_text("x" * 32)
    shutil.copy(RULES, tmp_path / RULES.name)
    (tmp_path / "prometheus.yml").write_text(
        SCRAPE.read_text().replace("/var/lib/penstock/api-token", str(token)))
    p = subprocess.run([PROMTOOL, "check", "config", str(tmp_path / "prometheus.yml")],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "honor_labels: true" in SCRAPE.read_text()


def test_readyz(server):
    status, reply = server.call("GET", "/readyz")
    assert status == 200 and reply == {"ready": True, "reasons": []}
    assert server.call("GET", "/readyz", token=None)[0] == 401


# --- webhooks ---------------------------------------------------------------

class Receiver(http.server.ThreadingHTTPServer):
    """Records every POST; answers 500 to the first one, 200 afterwards."""

    def __init__(self):
        self.calls = []
        self.lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with outer.lock:
                    outer.calls.append({"path": self.path, "headers": dict(self.headers),
                                        "body": body})
                    first = len(outer.calls) == 1
                self.send_response(500 if first else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass
        super().__init__(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_address[1]}"

    def events(self):
        with self.lock:
            return [c["headers"]["X-Penstock-Event"] for c in self.calls]

    def close(self):
        self.shutdown()
        self.server_close()


def test_webhook_on_failed_ready_to_complete_and_completed_signed_and_retried(tmp_path, db, target_db):
    secret = "hook-s3cret-0123456789"
    url_token = "path-T0KEN-987654"
    rx = Receiver()
    # the first change applied fails once (failed), the retry streams; the
    # migration is then ready_to_complete, and complete makes it completed
    s = ts.Server(tmp_path / "state", env_extra={
        "HOOK_URL": f"{rx.url}/hooks/{url_token}", "HOOK_SECRET": secret,
        "PENSTOCK_FAULT": "apply.batch.before_commit:error"}).start()
    try:
        Writer.create_tables(db, rows=100)
        spec = dict(ts.spec_for(db, target_db.url), type="migration",
                    retry={"initial_backoff_ms": 100, "max_backoff_ms": 100},
                    webhook={"url_env": "HOOK_URL", "secret_env": "HOOK_SECRET"})
        ts.start_streaming(s, spec)
        db.execute("INSERT INTO w_items VALUES (7001, 1, 'hook')")
        wait_for(lambda: "failed" in rx.events(), 60, what="the failed call")
        s.wait_state("orders", "ready_to_complete", timeout=120)
        wait_for(lambda: "ready_to_complete" in rx.events(), 60, what="the ready_to_complete call")
        assert s.call("POST", "/v1/jobs/orders/complete")[0] == 202
        s.wait_state("orders", "completed", timeout=120)
        wait_for(lambda: "completed" in rx.events(), 60, what="the completed call")

        with rx.lock:
            calls = list(rx.calls)
        # the first try got a 500 and was made again, same delivery
        assert calls[0]["headers"]["X-Penstock-Delivery"] == calls[1]["headers"]["X-Penstock-Delivery"]
        assert calls[0]["body"] == calls[1]["body"]
        delivered = calls[1:]
        assert [c["headers"]["X-Penstock-Event"] for c in delivered] == \
            ["failed", "ready_to_complete", "completed"], [c["headers"] for c in calls]
        for c in calls:
            want = "sha256=" + hmac.new(secret.encode(), c["body"], hashlib.sha256).hexdigest()
            assert c["headers"]["X-Penstock-Signature"] == want
            assert c["path"] == f"/hooks/{url_token}"
            assert c["headers"]["Content-Type"] == "application/json"
        bodies = [json.loads(c["body"]) for c in delivered]
        assert bodies[0]["event"] == "failed" and bodies[0]["to"] == "failed"
        assert bodies[0]["job"]["name"] == "orders" and bodies[0]["job"]["type"] == "migration"
        assert bodies[0]["last_error"]["class"] == "injected" and bodies[0]["last_error"]["hint"]
        assert bodies[1]["from"] == "running" and bodies[2]["to"] == "completed"
        assert len({b["delivery"] for b in bodies}) == 3

        text = s.call("GET", "/metrics")[1]
        wait_for(lambda: sample(s.call("GET", "/metrics")[1], "penstock_webhook_calls_total",
                                job="orders", result="delivered") == 3, 30, what="3 delivered")
        assert sample(text, "penstock_webhook_calls_total", job="orders", result="failed") == 1
        assert sample(text, "penstock_webhook_calls_total", job="orders", result="dropped") == 0
        # neither the secret nor the URL is shown anywhere: only their names
        seen = [s.logtext(), text, json.dumps(s.job("orders")),
                json.dumps(s.call("GET", "/v1/jobs/orders/events")[1]), s.cli("show", "orders").stdout]
        for t in seen:
            assert secret not in t and url_token not in t
        assert "HOOK_URL" in seen[0] and "HOOK_SECRET" in seen[2]
    finally:
        s.stop()
        rx.close()


def test_a_webhook_whose_variable_is_unset_is_dropped_and_said(tmp_path, db, target_db):
    s = ts.Server(tmp_path / "state", env_extra={
        "PENSTOCK_FAULT": "apply.batch.before_commit:error"}).start()
    try:
        Writer.create_tables(db, rows=10)
        spec = dict(ts.spec_for(db, target_db.url),
                    retry={"initial_backoff_ms": 3600000, "max_backoff_ms": 3600000},
                    webhook={"url_env": "NOT_SET_ANYWHERE"})
        ts.start_streaming(s, spec)
        db.execute("INSERT INTO w_items VALUES (7002, 1, 'x')")
        s.wait_state("orders", "failed")
        wait_for(lambda: "NOT_SET_ANYWHERE is not set" in s.logtext(), 60,
                 what="the log to say the variable is unset")
        # tried PS_WEBHOOK_ATTEMPTS times with doubling waits, then dropped:
        # the first failures are counted at once
        wait_for(lambda: (sample(s.call("GET", "/metrics")[1], "penstock_webhook_calls_total",
                                 job="orders", result="failed") or 0) >= 1, 30,
                 what="the failed try counted")
    finally:
        s.stop()


# --- systemd ------------------------------------------------------------------

def test_the_server_tells_systemd_it_is_ready_and_pings_the_watchdog(tmp_path):
    path = str(tmp_path / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(30)
    s = ts.Server(tmp_path / "state", env_extra={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "1000000"})
    s.state_dir.mkdir()
    s.proc = subprocess.Popen([ts.BIN, "server", "--listen", f"127.0.0.1:{s.port}", "--state-dir",
                               str(s.state_dir)], env=s.env, stdout=subprocess.DEVNULL,
                              stderr=open(s.log, "a"))
    try:
        first = sock.recv(4096).decode()
        # READY=1 comes once the API answers
        assert first.startswith("READY=1\n") and "STATUS=serving http://127.0.0.1:" in first, first
        assert s.healthy()
        pings = 0
        while pings < 3:   # every WATCHDOG_USEC / 2: each recv waits at most 30 s
            msg = sock.recv(4096).decode()
            pings += msg == "WATCHDOG=1"
        s.proc.send_signal(signal.SIGTERM)
        msgs = []
        while not any(m.startswith("STOPPING=1") for m in msgs):
            msgs.append(sock.recv(4096).decode())
        assert s.proc.wait(60) == 0
    finally:
        if s.proc.poll() is None:
            s.kill()
        sock.close()
