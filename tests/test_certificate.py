"""The certificate of agreement: attached to the 'agreed' email, in the bundle, and on demand; read back with
pdftotext, it names every confirmation's Message-ID, how its sender was authenticated, and the words written."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from xml.etree import ElementTree

import pytest
from click.testing import CliRunner

from pipeline.archive import verify
from pipeline.cli import main
from pipeline.home import Home, init_home
from pipeline.loop.certificate import authentication_lines
from pipeline.loop.service import Service, queue_plan
from pipeline.mailbox.maildir import MaildirMailbox
from pipeline.render.certificate import NO_AUTHENTICATION
from pipeline.replies import dkim as ours
from pipeline.store import AuthRecord
from tests.loop_support import (
    DANA,
    PLAN_ID,
    RAJ,
    SELLER,
    START,
    V1,
    Clock,
    attachments,
    example_plan,
    parse,
    reply,
    settings_toml,
)
from tests.test_dkim import KEY, RECORD, resolver

AGREED_V1 = "<plan.acme-northwind-2027.v1.agreed@northwind.example>"
DANA_WORDS = "Confirmed. We are good to go with version 1 as written."
RAJ_WORDS = "Confirmed from finance: the budget is approved."
TRUSTED = "mx.northwind.example"
# What Northwind's own server would stamp on a reply whose sender it authenticated.
STAMP = (f"{TRUSTED}; dkim=pass header.d=acme.example; spf=pass smtp.mailfrom=acme.example; "
         "dmarc=pass header.from=acme.example")
DNS = {"mail._domainkey.acme.example": RECORD}


def signed_reply(sender: str, body: str, message_id: str, clock: Clock, stamp: str | None = None) -> bytes:
    """A reply signed by acme.example's mail server (and stamped by ours, when `stamp`)."""
    import dkim

    raw = reply(sender, body, message_id=message_id, when=clock())
    signature = dkim.sign(raw, b"mail", b"acme.example", KEY,
                          include_headers=[b"from", b"to", b"subject", b"date", b"message-id"])
    top = f"Authentication-Results: {stamp}\r\n".encode() if stamp else b""
    return top + signature + raw


def pdf_text(data: bytes, tmp_path: Path) -> str:
    """The PDF's text as pdftotext reads it, each run of spaces one space."""
    pdf = tmp_path / "read.pdf"
    pdf.write_bytes(data)
    out = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, check=True, text=True).stdout
    return " ".join(out.split())


def agree(root: Path, *, trusted: bool, raj_on_call: bool) -> Path:
    """Version 1 sent; Dana confirms in a signed reply; Raj confirms by email (unsigned) or on a call."""
    home, clock = init_home(root), Clock(START)
    trust = f'trusted_authserv_ids = ["{TRUSTED}"]\n'
    settings = settings_toml("review")
    assert trust in settings  # the shared settings trust our server; here that is what a test decides
    home.settings_path.write_text(settings if trusted else settings.replace(trust, ""), encoding="utf-8")
    with home.open_store() as store:
        store.add_version(example_plan(), author=SELLER, reason="created", created=START)
    mail = MaildirMailbox(home.mail_dir)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ours, "lookup_txt", resolver(DNS))
        with Service.open(home, clock) as watcher:
            queue_plan(watcher.store, PLAN_ID, at=clock())
            assert watcher.poll().sent == [V1]
        clock.advance(hours=3)
        # Stamped by our server either way; it counts only where that server is trusted.
        mail.deliver(signed_reply(DANA, DANA_WORDS, "<c1.dana@acme.example>", clock, STAMP))
        clock.advance(hours=1)
        if not raj_on_call:
            mail.deliver(reply(RAJ, RAJ_WORDS, message_id="<c1.raj@acme.example>", when=clock(), authenticated=False))
        clock.advance(minutes=5)
        with Service.open(home, clock) as watcher:
            report = watcher.poll()
            assert report.errors == []
            if not trusted and not raj_on_call:
                # Nothing vouches for Raj's unsigned reply, the one that agrees the plan: it waits for the seller,
                # who releases it, as `mutualplan release` does.
                watcher.release("<c1.raj@acme.example>")
            if raj_on_call:
                watcher.confirm_on_call(PLAN_ID, RAJ, note="Raj confirmed version 1 on our call of 12 Jan")
    return root


@pytest.fixture(scope="module")
def by_email(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Both confirm by email; no trusted host: Dana's DKIM signature is all that vouches for anyone."""
    return agree(tmp_path_factory.mktemp("cert") / "home", trusted=False, raj_on_call=False)


@pytest.fixture(scope="module")
def on_call(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Our server is trusted and stamped Dana's reply; Raj confirmed on a call, which the seller recorded."""
    return agree(tmp_path_factory.mktemp("cert") / "home", trusted=True, raj_on_call=True)


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """DNS gone: whatever the certificate says of a signature, it says from what was kept at receipt."""
    def down(name: bytes, timeout: int = 5) -> bytes | None:
        raise AssertionError(f"the certificate looked up {name!r} in DNS")
    monkeypatch.setattr(ours, "lookup_txt", down)
    yield


def sent(root: Path) -> dict[str, object]:
    return {m["Message-ID"]: m for m in (parse(p.read_bytes()) for p in (root / "outbox").glob("*.eml"))}


def test_the_agreed_email_carries_a_certificate_naming_every_confirmation(by_email: Path, tmp_path: Path,
                                                                          offline: None) -> None:
    agreed = sent(by_email)[AGREED_V1]
    files = attachments(agreed)  # type: ignore[arg-type]
    kind, cert = files["Mutual Plan acme-northwind-2027 v1 certificate of agreement.pdf"]
    assert kind == "application/pdf"
    text = pdf_text(cert, tmp_path)
    # Each confirmation: its Message-ID, how its sender was authenticated, and the words as written.
    assert "<c1.dana@acme.example>" in text and "<c1.raj@acme.example>" in text
    assert "our own DKIM check: pass (d=acme.example s=mail)" in text
    assert DANA_WORDS in text and RAJ_WORDS in text
    # Raj's reply bore no signature and no trusted stamp: said in so many words.
    raj = text[text.index("Raj Patel <raj.patel@acme.example>"):]
    assert "no authentication" in raj and "our own DKIM check: none" in raj
    # An Authentication-Results header from a host the seller does not trust is not evidence.
    assert "dmarc=pass" not in text
    # The agreed letter is the one the plan email carried: its SHA-256 worked out from that attachment.
    plan_email = sent(by_email)[V1]
    _, letter = attachments(plan_email)["Mutual Plan acme-northwind-2027 v1.pdf"]  # type: ignore[arg-type]
    assert hashlib.sha256(letter).hexdigest() in text
    assert "Dana Whitfield <dana.whitfield@acme.example>" in text


def test_the_certificate_is_pdf_a_3b_with_its_facts_embedded(by_email: Path, tmp_path: Path) -> None:
    _, cert = attachments(sent(by_email)[AGREED_V1])["Mutual Plan acme-northwind-2027 v1 certificate of agreement.pdf"]  # type: ignore[arg-type]
    path = tmp_path / "cert.pdf"
    path.write_bytes(cert)
    meta = subprocess.run(["pdfinfo", "-meta", str(path)], capture_output=True, check=True, text=True).stdout
    pdfa = "{http://www.aiim.org/pdfa/ns/id/}"
    said = {k: v for e in ElementTree.fromstring(meta[meta.index("<x:xmpmeta"):meta.index("</x:xmpmeta>") + 12]).iter()
            for k, v in e.attrib.items() if k.startswith(pdfa)}
    assert said == {f"{pdfa}part": "3", f"{pdfa}conformance": "B"}
    listed = subprocess.run(["pdfdetach", "-list", str(path)], capture_output=True, check=True, text=True).stdout
    assert "certificate.json" in listed
    subprocess.run(["pdfdetach", "-save", "1", "-o", str(tmp_path / "facts.json"), str(path)], check=True)
    facts = json.loads((tmp_path / "facts.json").read_text())
    assert [s["message_id"] for s in facts["signers"]] == ["c1.dana@acme.example", "c1.raj@acme.example"]
    assert facts["signers"][0]["dkim_key"] == RECORD  # the key as it read at receipt
    pictures = tmp_path / "page"
    subprocess.run(["pdftoppm", "-r", "60", "-png", str(path), str(pictures)], check=True)
    assert sorted(p.name for p in tmp_path.glob("page*.png"))


def test_a_confirmation_the_seller_recorded_is_marked_as_such_and_trusted_verdicts_are_named(
        on_call: Path, tmp_path: Path, offline: None) -> None:
    _, cert = attachments(sent(on_call)[AGREED_V1])["Mutual Plan acme-northwind-2027 v1 certificate of agreement.pdf"]  # type: ignore[arg-type]
    text = pdf_text(cert, tmp_path)
    dana = text[text.index("Dana Whitfield <"):text.index("Raj Patel <")]
    for verdict in ("dmarc=pass", "dkim=pass", "spf=pass"):
        assert f"{verdict} (Authentication-Results from trusted host {TRUSTED})" in dana
    assert "no authentication" not in dana
    raj = text[text.index("Raj Patel <"):]
    assert "Recorded by the seller by hand" in raj
    assert "Raj confirmed version 1 on our call of 12 Jan" in raj


def test_the_bundle_holds_the_certificate_and_verify_guards_it(by_email: Path, tmp_path: Path, offline: None) -> None:
    home = tmp_path / "home"
    shutil.copytree(by_email, home)
    out = tmp_path / "bundle"
    result = CliRunner().invoke(main, ["--home", str(home), "archive", "export", PLAN_ID, "--out", str(out)])
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    name = "certificate-of-agreement-v001.pdf"
    assert manifest["certificate"]["file"] == name and name in manifest["files"]
    assert verify(out).ok
    # The manifest SHA-256 it states is that of manifest.json without the certificate's entry and key.
    inner = {k: v for k, v in manifest.items() if k != "certificate"}
    inner["files"] = {k: v for k, v in manifest["files"].items() if k != name}
    written = json.dumps(inner, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    digest = hashlib.sha256(written.encode()).hexdigest()
    assert manifest["certificate"]["evidence_manifest_sha256"] == digest
    assert digest in pdf_text((out / name).read_bytes(), tmp_path)
    # The same plan exports to the same bytes, certificate and all.
    zips = [tmp_path / "a.zip", tmp_path / "b.zip"]
    for each in zips:
        assert CliRunner().invoke(main, ["--home", str(home), "archive", "export", PLAN_ID, "--out", str(each)]
                                  ).exit_code == 0
    assert zips[0].read_bytes() == zips[1].read_bytes()
    # One byte of the certificate changed: named.
    data = bytearray((out / name).read_bytes())
    data[len(data) // 2] ^= 0x01
    (out / name).write_bytes(bytes(data))
    assert verify(out).changed == [name]


def test_a_manifest_whose_certificate_hash_was_rewritten_fails(by_email: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    shutil.copytree(by_email, home)
    out = tmp_path / "bundle"
    exported = CliRunner().invoke(main, ["--home", str(home), "archive", "export", PLAN_ID, "--out", str(out)])
    assert exported.exit_code == 0, exported.output
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["confirmations"][0]["at"] = "2027-01-01T00:00:00Z"  # the story changed, the certificate not
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    report = verify(out)
    assert any("certificate" in p for p in report.problems), report.problems


def test_archive_certificate_writes_it_on_demand_and_refuses_a_plan_not_agreed(by_email: Path, tmp_path: Path,
                                                                                 offline: None) -> None:
    home = tmp_path / "home"
    shutil.copytree(by_email, home)
    out = tmp_path / "cert.pdf"
    result = CliRunner().invoke(main, ["--home", str(home), "archive", "certificate", PLAN_ID, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "c1.raj@acme.example" in pdf_text(out.read_bytes(), tmp_path)
    fresh = tmp_path / "fresh"
    init_home(fresh)
    with Home(fresh).open_store() as store:
        store.add_version(example_plan(), author=SELLER, reason="created", created=START)
    refused = CliRunner().invoke(main, ["--home", str(fresh), "archive", "certificate", PLAN_ID, "--out", str(out)])
    assert refused.exit_code == 2
    assert "has not been agreed" in refused.output and "Traceback" not in refused.output


def test_the_demo_bundle_holds_a_certificate_telling_the_version_chain(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["--home", str(tmp_path / "demo-home"), "demo", "--json"])
    assert result.exit_code == 0, result.output
    bundle = Path(json.loads(result.output)["bundle"])
    manifest = json.loads((bundle / "manifest.json").read_text())
    v1, v2 = manifest["versions"]
    text = pdf_text((bundle / "certificate-of-agreement-v002.pdf").read_bytes(), tmp_path)
    # Version 2: its hash, its parent's (version 1's), who asked in which email and what it changed.
    assert f"Hash {v2['hash']} Parent {v1['hash']}" in text
    assert f"Hash {v1['hash']} Parent (none: the first version)" in text
    asked = f"by {v2['author']}: reply: " + "; ".join(f"{c['op']} {c.get('milestone') or c.get('title')}"
                                                      for c in v2["changes"])
    assert asked in text and f"Asked in <{v2['message_id']}>" in text
    assert f"Sent {v1['created']} (UTC) to dana.whitfield@acme.example, raj.patel@acme.example" in text
    # Each confirmation of version 2 by its Message-ID, vouched for by the demo's own trusted mail server.
    for confirmation in manifest["confirmations"]:
        assert f"<{confirmation['message_id']}>" in text
    assert "no authentication" not in text
    # How to check it names the bundle's files as the bundle names them.
    assert "vNNN-plan.json" in text and "versions/v001-plan.json" in manifest["files"]
    assert text.count("dmarc=pass") == len(manifest["confirmations"]) == 2
    assert verify(bundle).ok
    # On demand, the certificate is the bundle's byte for byte: a version with a redline, so a manifest hash over
    # the rendered redlines, as the export's.
    out = tmp_path / "on-demand.pdf"
    again = CliRunner().invoke(main, ["--home", str(tmp_path / "demo-home"), "archive", "certificate",
                                      json.loads(result.output)["plan_id"], "--out", str(out)])
    assert again.exit_code == 0, again.output
    assert out.read_bytes() == (bundle / "certificate-of-agreement-v002.pdf").read_bytes()


def test_the_agreed_emails_certificate_is_kept_once_so_a_retry_attaches_the_same_bytes(by_email: Path,
                                                                                     offline: None) -> None:
    from pipeline.loop.certificate import agreement_certificate

    attached = attachments(sent(by_email)[AGREED_V1])[  # type: ignore[arg-type]
        "Mutual Plan acme-northwind-2027 v1 certificate of agreement.pdf"][1]
    with Home(by_email).open_store() as store:
        again = agreement_certificate(store, Home(by_email).open_archive(), PLAN_ID, 1, keep=False)
        kept = store.evidence(PLAN_ID, "certificate")
    assert again == attached
    assert [(e.version, e.sha256) for e in kept] == [(1, hashlib.sha256(attached).hexdigest())]


@pytest.mark.parametrize(("signer", "vouched"), [("acme.example", True), ("mail.acme.example", True),
                                                  ("lists.example", False), ("notacme.example", False)])
def test_our_dkim_pass_vouches_only_for_a_signature_of_the_senders_domain(signer: str, vouched: bool) -> None:
    auth = AuthRecord(message_id="m", raw_sha256="0" * 64, dkim="pass", dkim_domain=signer, dkim_selector="s1",
                      dkim_key=None, dkim_reason=None, checked="2027-01-13T01:12:00Z")
    lines = authentication_lines(auth, "dana.whitfield@acme.example")
    assert (NO_AUTHENTICATION not in lines) is vouched
    assert any(f"our own DKIM check: pass (d={signer} s=s1)" in line for line in lines)
