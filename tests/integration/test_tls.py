"""TLS everywhere (issue 22, item 4): the API over HTTPS with the CLI
verifying the server, token rotation without a restart, and database
connections verified against a CA made in the test (sslmode=verify-full,
ssl_mode=verify_full) — refused when the host name is not the certificate's.

Every certificate is made here with `openssl` (tlsca.py); every server is
real: penstock server, PostgreSQL started with ssl=on, MariaDB with ssl-cert.
"""
import http.client
import json
import os
import pathlib
import signal
import socket
import ssl
import subprocess
import urllib.error
import urllib.request

import pytest

from conftest import BIN, PGTMP, Writer, wait_equal, wait_for
from test_server import TOKEN, Server, spec_for
from tlsca import CA, key_body_lines


@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    return CA(tmp_path_factory.mktemp("ca"))


class TlsServer(Server):
    """A penstock server with --tls-cert/--tls-key, called over https."""

    def __init__(self, state_dir, cert, key, cafile, env_extra=None, token_from_file=False):
        super().__init__(state_dir, env_extra)
        self.cert, self.key, self.cafile = cert, key, cafile
        self.url = f"https://127.0.0.1:{self.port}"
        self.env["PENSTOCK_SERVER"] = self.url
        self.env["PENSTOCK_CACERT"] = str(cafile)
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

    def call(self, method, path, body=None, token=TOKEN, raw=None):
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(self.url + path, data=data, method=method)
        if token is not None:
            req.add_header("Authorization", f"Bearer {token}")
        req.add_header("Content-Type", "application/json")
        ctx = ssl.create_default_context(cafile=str(self.cafile))
        try:
            with urllib.request.urlopen(req, timeout=120, context=ctx) as r:
                text, status = r.read().decode(), r.status
        except urllib.error.HTTPError as e:
            text, status = e.read().decode(), e.code
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text


def run_server(*args, env=None):
    return subprocess.run([BIN, "server", *args], capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, PENSTOCK_API_TOKEN=TOKEN, **(env or {})))


# --- the API over HTTPS -------------------------------------------------------

def test_api_over_https_verified_by_the_cli(tmp_path, ca, db):
    cert, key = ca.issue("api", ["127.0.0.1", "localhost"])
    s = TlsServer(tmp_path / "state", cert, key, ca.cert).start()
    try:
        assert "listening on https://127.0.0.1:" in s.logtext()
        status, job = s.call("POST", "/v1/jobs", spec_for(db, "jsonl://" + str(tmp_path / "out")))
        assert status == 201, job
        # the CLI, trusting the test CA: by IP address and by name (both in the certificate)
        for url in (s.url, f"https://localhost:{s.port}"):
            p = s.cli("list", "--server", url, "--cacert", str(ca.cert), check=0,
                      env_extra={"PENSTOCK_CACERT": ""})
            assert "orders" in p.stdout and "created" in p.stdout
        # without --cacert the system's CAs do not know ours: refused, saying what to do
        p = s.cli("list", check=1, env_extra={"PENSTOCK_CACERT": ""})
        assert "not trusted" in p.stderr and "--cacert" in p.stderr and "orders" not in p.stdout
        # with another CA's certificate: refused the same way
        other = CA(tmp_path / "other-ca", name="another CA")
        p = s.cli("list", "--cacert", str(other.cert), check=1)
        assert "not trusted" in p.stderr and "--cacert" in p.stderr
        # plain http against the https server: told to use https://
        p = s.cli("list", "--server", f"http://127.0.0.1:{s.port}", check=1)
        assert "https://" in p.stderr and "--tls-cert" in p.stderr
        # a --cacert that is not there
        p = s.cli("list", "--cacert", str(tmp_path / "nope.pem"), check=2)
        assert "--cacert" in p.stderr and "nope.pem" in p.stderr
        # the status page and the API work over https with a plain TLS client too
        ctx = ssl.create_default_context(cafile=str(ca.cert))
        conn = http.client.HTTPSConnection("127.0.0.1", s.port, context=ctx, timeout=30)
        conn.request("GET", "/")
        r = conn.getresponse()
        page = r.read().decode()
        assert r.status == 200 and "<html" in page.lower()
        conn.close()
        assert s.call("GET", "/v1/jobs/orders")[1]["state"] == "created"
        assert s.call("GET", "/v1/jobs", token="wrong-token-0123456789")[0] == 401
        # nothing of the key anywhere: log, answers, CLI output, state files
        texts = [s.logtext(), p.stdout + p.stderr, json.dumps(s.call("GET", "/v1/jobs")[1]),
                 s.call("GET", "/metrics")[1]]
        texts += [f.read_bytes().decode("latin-1") for f in s.state_dir.rglob("*") if f.is_file()]
        for line in key_body_lines(key):
            assert not any(line in t for t in texts), "a line of the TLS key leaked"
    finally:
        s.stop()


def test_server_refuses_a_certificate_it_cannot_use(tmp_path, ca):
    cert, key = ca.issue("bad", ["127.0.0.1"])
    _, other_key = ca.issue("bad2", ["127.0.0.1"])
    listen = ["--listen", "127.0.0.1:0", "--state-dir", str(tmp_path / "state")]
    # a key others can read: refused before anything starts, with the fix
    os.chmod(key, 0o644)
    p = run_server(*listen, "--tls-cert", str(cert), "--tls-key", str(key))
    assert p.returncode == 2 and f"chmod 600 {key}" in p.stderr
    os.chmod(key, 0o600)
    # a key that is not the certificate's
    p = run_server(*listen, "--tls-cert", str(cert), "--tls-key", str(other_key))
    assert p.returncode == 2 and "do not match" in p.stderr and "--tls-key" in p.stderr
    # one without the other; a file that is not PEM; a missing file
    p = run_server(*listen, "--tls-cert", str(cert))
    assert p.returncode == 2 and "--tls-cert and --tls-key go together" in p.stderr
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    p = run_server(*listen, "--tls-cert", str(junk), "--tls-key", str(key))
    assert p.returncode == 2 and "PEM" in p.stderr and "junk.pem" in p.stderr
    p = run_server(*listen, "--tls-cert", str(tmp_path / "none.pem"), "--tls-key", str(key))
    assert p.returncode == 2 and "none.pem" in p.stderr
    for line in key_body_lines(key) + key_body_lines(other_key):
        assert line not in p.stderr


def test_a_certificate_for_another_name_is_refused_by_the_cli(tmp_path, ca):
    cert, key = ca.issue("elsewhere", ["api.example.net"])
    s = TlsServer(tmp_path / "state", cert, key, ca.cert)
    s.state_dir.mkdir()
    s.proc = subprocess.Popen(
        [BIN, "server", "--listen", f"127.0.0.1:{s.port}", "--state-dir", str(s.state_dir),
         "--tls-cert", str(cert), "--tls-key", str(key)],
        env=s.env, stdout=subprocess.DEVNULL, stderr=open(s.log, "a"))
    try:
        wait_for(lambda: "listening on https://" in s.logtext(), 20, what="server to listen")
        p = s.cli("list", check=1)
        assert "not trusted" in p.stderr and "host name" in p.stderr
    finally:
        s.stop(keep_jobs=True)


# --- token rotation -----------------------------------------------------------

def test_token_rotation_on_sighup(tmp_path, ca, db):
    """SIGHUP re-reads <state-dir>/api-token: the new token works at once, the
    old one is refused, and a request whose headers came before the rotation
    is carried through."""
    cert, key = ca.issue("rot", ["127.0.0.1"])
    state = tmp_path / "state"
    state.mkdir()
    token_file = state / "api-token"
    token_file.write_text(TOKEN + "\n")
    os.chmod(token_file, 0o600)
    s = TlsServer(state, cert, key, ca.cert, token_from_file=True).start()
    new_token = "rotated-token-" + os.urandom(12).hex()
    try:
        assert s.cli("list", check=0).returncode == 0   # the CLI reads the file too
        # a request in flight: headers with the old token, then the server
        # answers 100 Continue (it has read and checked them), body not sent yet
        body = json.dumps(spec_for(db, "jsonl://" + str(tmp_path / "out"))).encode()
        ctx = ssl.create_default_context(cafile=str(ca.cert))
        raw = ctx.wrap_socket(socket.create_connection(("127.0.0.1", s.port), timeout=60),
                              server_hostname="127.0.0.1")
        raw.sendall((f"POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     f"Authorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {len(body)}\r\nExpect: 100-continue\r\n\r\n").encode())
        interim = b""
        while b"\r\n\r\n" not in interim:
            chunk = raw.recv(4096)
            assert chunk, "connection closed before 100 Continue"
            interim += chunk
        assert interim.startswith(b"HTTP/1.1 100")

        tmp = state / "api-token.new"
        tmp.write_text(new_token + "\n")
        os.chmod(tmp, 0o600)
        os.replace(tmp, token_file)
        s.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "API token replaced" in s.logtext(), 20, what="the token to be reloaded")

        assert s.call("GET", "/healthz", token=TOKEN)[0] == 401
        assert s.call("GET", "/healthz", token=new_token)[0] == 200
        p = s.cli("list", check=2, env_extra={"PENSTOCK_API_TOKEN": TOKEN})
        assert "token is wrong" in p.stderr
        assert s.cli("list", check=0).returncode == 0   # the new token, from the file

        # the request that started before the rotation goes through
        raw.sendall(body)
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = raw.recv(65536)
            assert chunk, "connection closed without an answer"
            answer += chunk
        raw.close()
        assert answer.startswith(b"HTTP/1.1 201"), answer[:300]
        assert s.call("GET", "/v1/jobs/orders", token=new_token)[1]["state"] == "created"

        # a bad file keeps the token that works
        token_file.write_text("short\n")
        s.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "was not replaced" in s.logtext(), 20, what="the bad token to be refused")
        assert s.call("GET", "/healthz", token=new_token)[0] == 200
        log = s.logtext()
        assert TOKEN not in log and new_token not in log
    finally:
        token_file.write_text(new_token + "\n")
        for j in s.call("GET", "/v1/jobs", token=new_token)[1]["jobs"]:
            s.call("DELETE", f"/v1/jobs/{j['id']}", token=new_token)
        s.stop(keep_jobs=True)
