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
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import urllib.error
import urllib.request

import pytest

from conftest import BIN, Cluster, Penstock, Writer, wait_equal, wait_for
from test_server import TOKEN, W_TABLES, TlsServer, spec_for
from tlsca import CA, key_body_lines


@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    return CA(tmp_path_factory.mktemp("ca"))


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
        # a TLS parameter carrying a secret is refused by the API without echoing it
        bad = spec_for(db, "jsonl://" + str(tmp_path / "out"), name="sslpw")
        bad["source"]["url"] = db.url + "?sslmode=verify-full&sslpassword=k3y-Pa55-api"
        status, reply = s.call("POST", "/v1/jobs", bad)
        assert status == 400 and "sslpassword" in json.dumps(reply), reply
        assert "k3y-Pa55-api" not in json.dumps(reply) and "k3y-Pa55-api" not in s.logtext()
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


# --- PostgreSQL over verified TLS ----------------------------------------------

@pytest.fixture(scope="module")
def ssl_cluster(ca):
    """A PostgreSQL cluster with ssl=on, its certificate signed by the test CA
    for 127.0.0.1 and localhost, every connection logged (to see that
    penstock's are encrypted), and a role that logs in with a client
    certificate only."""
    base = pathlib.Path(tempfile.mkdtemp(prefix="penstock-tls-"))
    os.chmod(base, 0o755)
    tls = base / "tls"
    tls.mkdir()
    cert, key = ca.issue("pg", ["127.0.0.1", "localhost"])
    for src, name in ((cert, "server.crt"), (key, "server.key"), (ca.cert, "ca.crt")):
        shutil.copy(src, tls / name)
    os.chmod(tls / "server.key", 0o600)
    if os.getuid() == 0:   # the server runs as postgres (pgtmp.sh)
        pw = pwd.getpwnam("postgres")
        for f in (tls, *tls.iterdir()):
            os.chown(f, pw.pw_uid, pw.pw_gid)
    c = Cluster(str(base), settings=["ssl=on", f"ssl_cert_file={tls}/server.crt",
                                     f"ssl_key_file={tls}/server.key", f"ssl_ca_file={tls}/ca.crt",
                                     "log_connections=on"])
    hba = pathlib.Path(c.dir) / "data" / "pg_hba.conf"
    hba.write_text("hostssl all certuser 127.0.0.1/32 cert\n"
                   "hostssl replication certuser 127.0.0.1/32 cert\n" + hba.read_text())
    conn = c.connect()
    with conn.cursor() as cur:
        cur.execute("SELECT pg_reload_conf()")
    conn.close()
    yield c
    c.stop()
    shutil.rmtree(base, ignore_errors=True)


def pg_log(cluster):
    return (pathlib.Path(cluster.dir) / "server.log").read_text()


def tls_url(db, ca_file, host="127.0.0.1", user="postgres", extra=""):
    return (f"postgresql://{user}@{host}:{db.cluster.port}/{db.name}"
            f"?sslmode=verify-full&sslrootcert={ca_file}{extra}")


def test_postgresql_verify_full_streams_over_tls(tmp_path, ca, ssl_cluster):
    src, dst = ssl_cluster.new_database(), ssl_cluster.new_database()
    Writer.create_tables(src, rows=200)
    app = "penstock_tls_" + src.name
    spec = {"name": "tls", "type": "sync",
            "source": {"url": tls_url(src, ca.cert, extra=f"&application_name={app}")},
            "target": {"url": tls_url(dst, ca.cert, host="localhost",
                                      extra=f"&application_name={app}")}}
    p = Penstock(tmp_path, spec)
    try:
        p.start()
        p.wait_streaming(src, timeout=90)
        src.execute("INSERT INTO w_items SELECT g, g, 'after' FROM generate_series(201, 260) g")
        src.execute("UPDATE w_items SET v = -v WHERE id % 7 = 0")
        src.execute("INSERT INTO w_history VALUES (1, 'x'), (2, 'y')")
        wait_equal(src, dst, W_TABLES)
        assert p.stop() == 0
    finally:
        if p.proc.poll() is None:
            p.kill()
    # every connection penstock made (source, replication, target) was TLS:
    # PostgreSQL logs "SSL enabled" on the line of each authorized connection
    lines = [ln for ln in pg_log(ssl_cluster).splitlines()
             if "connection authorized" in ln and f"application_name={app}" in ln]
    assert any("replication connection" in ln for ln in lines), lines
    assert len(lines) >= 3 and all("SSL enabled" in ln for ln in lines), lines
    # the redacted URL shown by penstock keeps the TLS parameters (no secret in them)
    assert "sslmode=verify-full&sslrootcert=" in p.stderr()


def test_postgresql_wrong_host_name_or_ca_is_refused(tmp_path, ca, ssl_cluster):
    src = ssl_cluster.new_database()
    src.execute("CREATE TABLE t (id int PRIMARY KEY)")
    out = "jsonl://" + str(tmp_path / "out")

    def run(url):
        p = Penstock(tmp_path / f"run{run.n}", {"name": "tls", "type": "cdc", "source": {"url": url},
                                                "target": {"url": out}})
        run.n += 1
        p.workdir.mkdir()
        return p.run_to_exit(timeout=60)
    run.n = 0
    # a name the certificate does not hold, reaching the same server (hostaddr)
    rc, _, err = run(tls_url(src, ca.cert, host="db.wrong-name.test", extra="&hostaddr=127.0.0.1"))
    assert rc == 1, err
    assert 'does not match host name "db.wrong-name.test"' in err
    assert "subjectAltName" in err and "reissued" in err
    # a CA that did not sign the server's certificate
    other = CA(tmp_path / "other-ca", name="another CA")
    rc, _, err = run(tls_url(src, other.cert))
    assert rc == 1 and "certificate verify failed" in err and "sslrootcert=FILE" in err, err
    # verify-full without the CA's certificate
    rc, _, err = run(f"postgresql://postgres@127.0.0.1:{ssl_cluster.port}/{src.name}"
                     f"?sslmode=verify-full&sslrootcert={tmp_path}/missing.crt")
    assert rc == 1 and "root certificate file" in err and "sslrootcert" in err, err
    # a password for the client key in the URL is refused without echoing it
    rc, _, err = run(tls_url(src, ca.cert, extra="&sslpassword=k3y-Pa55-zzz"))
    assert rc == 2 and "k3y-Pa55-zzz" not in err and "sslpassword" in err, err


def test_postgresql_client_certificate(tmp_path, ca, ssl_cluster):
    """sslcert and sslkey reach libpq: a role that may only log in with a
    certificate streams; its key, readable by others, is refused by libpq;
    no line of the key is ever printed."""
    src = ssl_cluster.new_database()
    src.execute("DO $$ BEGIN CREATE ROLE certuser LOGIN REPLICATION; "
                "EXCEPTION WHEN duplicate_object THEN NULL; END $$")
    src.execute("CREATE TABLE c (id int PRIMARY KEY, v text)")
    src.execute("ALTER TABLE c OWNER TO certuser")
    src.execute(f'GRANT CREATE ON DATABASE "{src.name}" TO certuser')
    cert, key = ca.issue("certuser", ["certuser"], client=True)
    url = tls_url(src, ca.cert, user="certuser", extra=f"&sslcert={cert}&sslkey={key}")
    p = Penstock(tmp_path, {"name": "cc", "type": "cdc", "source": {"url": url},
                            "target": {"url": "jsonl://" + str(tmp_path / "out")}})
    try:
        p.start()
        p.wait_streaming(src, timeout=90)
        src.execute("INSERT INTO c VALUES (1, 'one'), (2, 'two')")
        wait_for(lambda: len(p.events()) >= 2, what="2 events")
        assert p.stop() == 0
    finally:
        if p.proc.poll() is None:
            p.kill()
    assert sorted(e["after"]["id"] for e in p.events() if e.get("after")) == [1, 2]
    texts = [p.stderr(), json.dumps(p.checkpoint())] + [f.read_text() for f in p.out_dir.glob("*")]
    # without the certificate: refused by the server, with what to do
    p.spec["source"]["url"] = tls_url(src, ca.cert, user="certuser")
    rc, _, err = p.run_to_exit(timeout=60)
    assert rc == 1 and "sslcert=FILE" in err, err
    # a key others can read: libpq refuses it, penstock says what to do
    os.chmod(key, 0o644)
    p.spec["source"]["url"] = url
    rc, _, err = p.run_to_exit(timeout=60)
    os.chmod(key, 0o600)
    assert rc == 1 and "group or world access" in err and "chmod 600" in err, err
    texts.append(err)
    for line in key_body_lines(key):
        assert not any(line in t for t in texts), "a line of the client key leaked"


# --- MariaDB over verified TLS ---------------------------------------------------

@pytest.fixture(scope="module")
def ssl_mariadb(ca, tmp_path_factory):
    """A MariaDB server with ssl-cert/ssl-key signed by the test CA for
    127.0.0.1 only, listening on 127.0.0.1 and 127.0.0.2 (the second address
    reaches the same server by a name its certificate does not hold), and a
    replication user that may only connect over TLS (REQUIRE SSL)."""
    from mariadb import MariaDB
    cert, key = ca.issue("mariadb", ["127.0.0.1"])
    m = MariaDB(tmp_path_factory.mktemp("mariadb"),
                extra=[f"--ssl-cert={cert}", f"--ssl-key={key}", f"--ssl-ca={ca.cert}",
                       "--bind-address=127.0.0.1,127.0.0.2"])
    m.start()
    m.execute("CREATE USER tlsuser@'%' REQUIRE SSL")
    m.execute("GRANT SELECT, RELOAD, REPLICATION SLAVE, REPLICATION CLIENT, BINLOG MONITOR "
              "ON *.* TO tlsuser@'%'")
    m.execute("GRANT CREATE, INSERT, DELETE ON penstock.* TO tlsuser@'%'")   # --until's fence
    yield m
    m.stop()


def test_mariadb_verify_full_reads_over_tls(tmp_path, ca, ssl_mariadb):
    m = ssl_mariadb
    m.execute("DROP DATABASE IF EXISTS d")
    m.execute("CREATE DATABASE d")
    m.execute("CREATE TABLE d.t (id int PRIMARY KEY, v varchar(20))")
    m.execute("INSERT INTO d.t VALUES (1, 'one'), (2, 'two')")
    base = f"mysql://tlsuser@{{host}}:{m.port}/?ssl_mode=verify_full&ssl_ca={{ca}}"
    spec = {"name": "mytls", "type": "sync", "tables": {"include": ["d.*"]},
            "source": {"url": base.format(host="127.0.0.1", ca=ca.cert)},
            "target": {"url": "jsonl://" + str(tmp_path / "ok" / "out")}}
    p = Penstock(tmp_path / "ok", spec)
    p.workdir.mkdir()
    try:
        p.start()
        p.wait_log("; streaming, ", timeout=90)
        m.execute("INSERT INTO d.t VALUES (3, 'three')")
        wait_for(lambda: {e["after"]["id"] for e in p.events() if e.get("after")} >= {1, 2, 3},
                 60, what="rows 1..3 in the output")
        assert p.stop() == 0
    finally:
        if p.proc.poll() is None:
            p.kill()
    # the same user without TLS is refused by the server (REQUIRE SSL): so
    # the run above was encrypted
    spec["source"]["url"] = f"mysql://tlsuser@127.0.0.1:{m.port}/?ssl_mode=disable"
    (tmp_path / "plain").mkdir()
    rc, _, err = Penstock(tmp_path / "plain", spec).run_to_exit(timeout=60)
    assert rc == 1 and "Access denied" in err, err


def test_mariadb_wrong_host_name_or_ca_is_refused(tmp_path, ca, ssl_mariadb):
    m = ssl_mariadb
    m.execute("CREATE DATABASE IF NOT EXISTS d")
    m.execute("CREATE TABLE IF NOT EXISTS d.t (id int PRIMARY KEY, v varchar(20))")

    def run(url, n):
        spec = {"name": "mytls", "type": "sync", "tables": {"include": ["d.*"]},
                "source": {"url": url}, "target": {"url": "jsonl://" + str(tmp_path / "out")}}
        p = Penstock(tmp_path / f"r{n}", spec)
        p.workdir.mkdir()
        return p.run_to_exit(timeout=60, args=("--until", "caught-up"))
    # 127.0.0.2 reaches the server, but its certificate names 127.0.0.1 only
    rc, _, err = run(f"mysql://tlsuser@127.0.0.2:{m.port}/?ssl_mode=verify_full&ssl_ca={ca.cert}", 1)
    assert rc == 1 and "Validation of SSL server certificate failed" in err, err
    assert "does not name the URL's host" in err and "subjectAltName" in err, err
    # a CA that did not sign the server's certificate
    other = CA(tmp_path / "other-ca", name="another CA")
    rc, _, err = run(f"mysql://tlsuser@127.0.0.1:{m.port}/?ssl_mode=verify_full&ssl_ca={other.cert}", 2)
    assert rc == 1 and "self-signed certificate in certificate chain" in err, err
    assert "ssl_ca=FILE" in err, err
    # and the right CA by the right address works (the refusals above were
    # about the certificate, not the user or the server)
    rc, _, err = run(f"mysql://tlsuser@127.0.0.1:{m.port}/?ssl_mode=verify_full&ssl_ca={ca.cert}"
                     "&connect_timeout=5", 3)
    assert rc == 0, err
