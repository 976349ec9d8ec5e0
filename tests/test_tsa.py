"""The trusted timestamp: with [archive] tsa_url set, export has the manifest's SHA-256 stamped (RFC 3161) by a
timestamp authority, keeps its answer in the bundle, and verify checks it. The authority here is a local one the
tests start: OpenSSL's `ts -reply` behind a small HTTP server, with a certificate made for the test."""

from __future__ import annotations

import datetime as dt
import hashlib
import shutil
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from pipeline import evidence
from pipeline.archive import verify
from pipeline.cli import main
from pipeline.errors import ArchiveError
from tests.test_certificate import by_email  # noqa: F401 - an agreed plan's home, made once

TSA_NAME = "Test Timestamp Authority"


def _cert(name: str, key: rsa.RSAPrivateKey, issuer: x509.Name | None, signer: rsa.RSAPrivateKey,
          *, ca: bool) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer or subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if not ca:
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
    return builder.sign(signer, hashes.SHA256())


def _pem(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.fixture(scope="module")
def authority(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A timestamp authority on loopback: its URL, and its CA certificate (what a reviewer would trust)."""
    root = tmp_path_factory.mktemp("tsa")
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca = _cert("Test Root CA", ca_key, None, ca_key, ca=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = _cert(TSA_NAME, key, ca.subject, ca_key, ca=False)
    ca_pem = _pem(root / "ca.pem", ca.public_bytes(serialization.Encoding.PEM))
    _pem(root / "tsa.pem", cert.public_bytes(serialization.Encoding.PEM))
    _pem(root / "tsa.key", key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                             serialization.NoEncryption()))
    (root / "serial").write_text("01\n")
    (root / "tsa.cnf").write_text(f"""\
[ tsa ]
default_tsa = local
[ local ]
serial = {root / "serial"}
signer_digest = sha256
default_policy = 1.2.3.4.1
digests = sha256
accuracy = secs:1
ordering = yes
tsa_name = yes
ess_cert_id_alg = sha256
""")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            query = self.rfile.read(int(self.headers["Content-Length"]))
            tsq, tsr = root / "q.tsq", root / "r.tsr"
            tsq.write_bytes(query)
            subprocess.run(["openssl", "ts", "-reply", "-config", str(root / "tsa.cnf"), "-queryfile", str(tsq),
                            "-signer", str(root / "tsa.pem"), "-inkey", str(root / "tsa.key"), "-out", str(tsr)],
                           check=True, capture_output=True)
            body = tsr.read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "application/timestamp-reply")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/tsr", ca_pem
    finally:
        server.shutdown()
        server.server_close()


def test_a_stamp_names_the_time_the_authority_and_the_hash(authority: tuple[str, Path]) -> None:
    url, _ = authority
    data = b'{"format": "a manifest"}\n'
    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    token = evidence.timestamp(data, url)
    stamp = evidence.read_stamp(token)
    assert stamp.digest == hashlib.sha256(data).hexdigest()
    assert TSA_NAME in stamp.authority
    when = dt.datetime.fromisoformat(stamp.time.replace("Z", "+00:00"))
    assert before - dt.timedelta(seconds=2) <= when <= dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2)
    assert list(evidence.check_token(token, data)) == []
    assert list(evidence.check_token(token, data + b" ")) == [
        "manifest.json.tsr: it stamps another manifest.json than this one"]


def export(home: Path, out: Path, url: str | None) -> None:
    settings = home / "mutualplan.toml"
    if url is not None:
        settings.write_text(settings.read_text() + f'\n[archive]\ntsa_url = "{url}"\n')
    result = CliRunner().invoke(main, ["--home", str(home), "archive", "export", "acme-northwind-2027",
                                       "--out", str(out)])
    assert result.exit_code == 0, result.output


def test_export_keeps_the_stamp_and_verify_checks_it(by_email: Path, authority: tuple[str, Path],  # noqa: F811
                                                     tmp_path: Path) -> None:
    url, ca = authority
    home = tmp_path / "home"
    shutil.copytree(by_email, home)
    out = tmp_path / "bundle"
    export(home, out, url)
    token = out / "manifest.json.tsr"
    assert token.is_file()
    report = verify(out)
    assert report.ok, report.to_dict()
    said = CliRunner().invoke(main, ["archive", "verify", str(out)])
    assert said.exit_code == 0, said.output
    assert f"Timestamped {evidence.read_stamp(token.read_bytes()).time} by Common Name: {TSA_NAME}" in said.output
    # A reviewer without mutualplan checks the same with OpenSSL, trusting the authority's CA.
    subprocess.run(["openssl", "ts", "-verify", "-in", str(token), "-data", str(out / "manifest.json"),
                    "-CAfile", str(ca)], check=True, capture_output=True)
    # The stamp of another manifest, put in its place: named.
    shutil.copy(token, tmp_path / "kept.tsr")
    token.write_bytes(evidence.timestamp(b"another manifest\n", url))
    assert verify(out).problems == ["manifest.json.tsr: it stamps another manifest.json than this one"]
    # Its signature broken (a byte of the signature changed): named.
    data = bytearray((tmp_path / "kept.tsr").read_bytes())
    data[-5] ^= 0x01
    token.write_bytes(bytes(data))
    problems = verify(out).problems
    assert len(problems) == 1 and problems[0].startswith("manifest.json.tsr: its signature does not hold")


def test_a_manifest_changed_after_its_stamp_is_named(by_email: Path, authority: tuple[str, Path],  # noqa: F811
                                                     tmp_path: Path) -> None:
    home = tmp_path / "home"
    shutil.copytree(by_email, home)
    out = tmp_path / "bundle"
    export(home, out, authority[0])
    manifest = out / "manifest.json"
    manifest.write_text(manifest.read_text().replace('"plan_id": "acme-northwind-2027"',
                                                     '"plan_id": "acme-northwind-2028"'))
    assert "manifest.json.tsr: it stamps another manifest.json than this one" in verify(out).problems


def test_an_authority_that_does_not_answer_fails_the_export_clearly(by_email: Path, tmp_path: Path) -> None:  # noqa: F811
    home = tmp_path / "home"
    shutil.copytree(by_email, home)
    (home / "mutualplan.toml").write_text((home / "mutualplan.toml").read_text()
                                          + '\n[archive]\ntsa_url = "http://127.0.0.1:9/tsr"\n')
    result = CliRunner().invoke(main, ["--home", str(home), "archive", "export", "acme-northwind-2027",
                                       "--out", str(tmp_path / "bundle")])
    assert result.exit_code == 2
    assert "did not stamp the manifest" in result.output and "Traceback" not in result.output
    with pytest.raises(ArchiveError, match="did not stamp"):
        evidence.timestamp(b"x", "http://127.0.0.1:9/tsr", timeout=2)


def test_a_tsa_url_that_is_not_an_address_is_refused(tmp_path: Path) -> None:
    from pipeline.config import load_settings
    from pipeline.errors import ConfigError

    with pytest.raises(ConfigError, match=r"\[archive\] tsa_url must be the http\(s\) address"):
        load_settings({"archive": {"tsa_url": "freetsa.org"}})
    assert load_settings({"archive": {"tsa_url": "https://freetsa.org/tsr"}}).tsa_url == "https://freetsa.org/tsr"
    assert load_settings({}).tsa_url == ""
