"""A throwaway certificate authority for the TLS tests, made with the
`openssl` command line in a test's temporary directory: a CA, and server
certificates it signs for the names a test chooses (subjectAltName), so a
test can present a certificate that matches the host it is reached by, or
one made for another name.
"""
import os
import pathlib
import subprocess


def _openssl(*args, cwd):
    p = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    assert p.returncode == 0, f"openssl {' '.join(args)}: {p.stderr}"


class CA:
    def __init__(self, directory, name="penstock test CA"):
        self.dir = pathlib.Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.cert = self.dir / "ca.pem"
        self.key = self.dir / "ca.key"
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "2",
                 "-subj", f"/CN={name}", "-keyout", str(self.key), "-out", str(self.cert),
                 "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=self.dir)
        os.chmod(self.key, 0o600)

    def issue(self, stem, names, client=False):
        """A server certificate for names ("127.0.0.1", "localhost", ...), or
        with client a client certificate whose common name is names[0] (a
        PostgreSQL role for cert authentication): returns (cert path, key
        path); the key has mode 0600."""
        cert, key, csr = (self.dir / f"{stem}.pem", self.dir / f"{stem}.key",
                          self.dir / f"{stem}.csr")
        ext = self.dir / f"{stem}.ext"
        alt = ",".join(("IP:" if n.replace(".", "").isdigit() else "DNS:") + n for n in names)
        usage = "clientAuth" if client else "serverAuth"
        ext.write_text(f"subjectAltName={alt}\nextendedKeyUsage={usage}\n"
                       "basicConstraints=CA:FALSE\n")
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={names[0]}",
                 "-keyout", str(key), "-out", str(csr), cwd=self.dir)
        os.chmod(key, 0o600)
        _openssl("x509", "-req", "-in", str(csr), "-CA", str(self.cert), "-CAkey", str(self.key),
                 "-CAcreateserial", "-days", "2", "-sha256", "-extfile", str(ext), "-out", str(cert),
                 cwd=self.dir)
        return cert, key


def key_body_lines(key_path):
    """The base64 lines of a PEM private key: none of them may appear in any
    log, state file or answer."""
    lines = pathlib.Path(key_path).read_text().splitlines()
    return [ln for ln in lines if ln and not ln.startswith("-----")]
