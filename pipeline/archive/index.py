"""index.html, the page a person opens first: the plan, its state, every event linked to its files, and how to
verify the bundle; and each email beside its .eml as a page of text."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

from pipeline.archive.mailpage import email_page, read_email
from pipeline.archive.manifest import INDEX, MANIFEST
from pipeline.archive.pages import render_page
from pipeline.plan.model import Plan
from pipeline.render.format import short_date, timeline_rows

# At the same moment, a reply comes before the confirmation it gave, and that before the agreement it made.
_ORDER = {"created": 0, "changed": 0, "sent": 1, "replied": 1, "confirmed": 2}


def add_pages(files: dict[str, bytes], manifest: dict[str, Any], plan: Plan, audit: list[dict[str, Any]]) -> None:
    """Add each email's page and index.html to `files` (before the manifest lists them), noting each page in
    the manifest's email entries."""
    subjects: dict[str, str] = {}
    for mail in manifest["emails"]:
        page = str(PurePosixPath(mail["file"]).with_suffix(".html"))
        shown = read_email(files[mail["file"]])
        files[page] = email_page(shown, eml_name=PurePosixPath(mail["file"]).name, direction=mail["direction"])
        mail["html"] = page
        subjects[mail["file"]] = shown["subject"]
    files[INDEX] = render_page(
        "index.html.j2", plan=plan, state=manifest["state"], versions=manifest["versions"],
        events=events(manifest, audit, subjects), documents=manifest["documents"],
        files=sorted(n for n in files if n != INDEX), manifest=MANIFEST,
        milestones=timeline_rows(plan), short_date=short_date,
    ).encode("utf-8")


def events(manifest: dict[str, Any], audit: list[dict[str, Any]], subjects: dict[str, str]) -> list[dict[str, Any]]:
    """Every event of the plan in time order: versions made, emails sent and received, confirmations, states."""
    found: list[dict[str, Any]] = []
    by_message = {m["message_id"]: m for m in manifest["emails"] if m.get("message_id")}
    for v in manifest["versions"]:
        links = [("plan", v["plan"]), *[("letter", name) for name in v["letters"]]]
        if v["redline"]:
            links.append((f"redline from version {v['number'] - 1}", v["redline"]))
        what = "created" if v["number"] == 1 else "changed"
        found.append({"at": v["created"], "event": what, "links": links,
                      "text": f"Version {v['number']}: {v['reason']}, asked by {v['author']}"})
    for m in manifest["emails"]:
        what = "replied" if m["direction"] == "in" else "sent"
        found.append({"at": m["at"], "event": what, "links": [("readable", m["html"]), (".eml", m["file"])],
                      "text": f"{subjects.get(m['file']) or '(no subject)'} (about version {m['version']})"})
    for c in manifest["confirmations"]:
        mail = by_message.get(c.get("message_id"))
        links = [("the email", mail["html"])] if mail else []
        found.append({"at": c["at"], "event": "confirmed", "links": links,
                      "text": f"{c['email']} confirmed version {c['version']}, {c['how']}"})
    for a in audit:
        if a["event"] == "state changed" and a["detail"].get("to"):
            found.append({"at": a["at"], "event": str(a["detail"]["to"]), "links": [],
                          "text": f"The plan is {a['detail']['to']} (it was {a['detail'].get('from')})"})
    found.sort(key=lambda e: (e["at"], _ORDER.get(e["event"], 3)))
    return found
