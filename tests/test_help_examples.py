"""Every `--help` example runs: each line, in a scratch home holding the plan, files and state it names."""

from __future__ import annotations

import json
import shlex
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.demo import reply
from pipeline.render.templates import default_templates

PLAN = "acme-northwind-2027"
SELLER = "jordan.lee@northwind.example"
V1 = "<plan.acme-northwind-2027.v1@northwind.example>"
SUBJECT = "Mutual Plan: Acme and Northwind Analytics"
# Lines that cannot finish in a test, and why; every other example line must run and succeed.
SKIPPED = {
    "mutualplan watch --interval 120": "polls until stopped: the loop runs forever by design",
    "mutualplan worker --concurrency 8": "runs jobs until stopped, as a service does",
}
# The state each command's examples start from (default "sent": version 1 added and sent).
SCENES = {
    "add": "fresh", "check": "fresh", "show": "fresh", "new": "fresh", "render": "fresh",
    "init": "fresh", "send": "fresh", "demo": "fresh", "approve": "waiting", "preview": "waiting",
    "status": "waiting", "diff": "three", "release": "held", "reopen": "declined", "outbox": "queued",
    "archive": "held",  # an agreed plan (both confirmed before the held change): it has a certificate of agreement
}
# What an example works on that an earlier example of another command makes; files it writes itself are removed.
BEFORE = {
    "archive verify": [["archive", "export", PLAN, "--out", f"{PLAN}.zip"],
                       ["archive", "export", PLAN, "--out", "evidence"]],
}
WRITES = {"export": ["acme.md"], "new": ["acme.md"]}
# Exit statuses an example may end with besides 0: `check` says 1 when a plan has warnings (the example has one).
# `login` says a Maildir home (the one examples run in) needs no sign-in, exit 2; tests/test_graph_login.py signs in.
EXITS = {"check": {0, 1}, "login": {2}}


def examples(path: list[str]) -> list[str]:
    """The lines of a command's help after "Example", continuation lines joined."""
    text = CliRunner().invoke(main, [*path, "--help"], terminal_width=200).output
    block = text.split("Example", 1)[1].split("\nOptions:", 1)[0].replace("\\\n", " ")
    return [line.strip() for line in block.splitlines()[1:] if line.strip()]


def commands() -> list[list[str]]:
    """Every command's path, a group's subcommands included."""
    found = []
    for name in main.list_commands(click.Context(main)):
        command = main.get_command(click.Context(main), name)
        found.append([name])
        if isinstance(command, click.Group):
            found += [[name, sub] for sub in command.list_commands(click.Context(command))]
    return found


def _email(message_id: str, body: str, sender: tuple[str, str] = ("Dana Whitfield", "dana.whitfield@acme.example"),
           minutes: int = 0) -> bytes:
    when = datetime.now(UTC) - timedelta(hours=1) + timedelta(minutes=minutes)
    return reply(sender=sender, to=SELLER, subject=SUBJECT, in_reply_to=V1, references=[V1], when=when,
                 body=body, message_id=message_id)


CHANGE = "Hi Jordan,\n\nPlease move the pilot to March 8.\n\nBest,\nDana\n"


def _cli(home: Path, *args: str) -> None:
    result = CliRunner().invoke(main, ["--home", str(home), *args])
    assert result.exit_code == 0, (args, result.output)


def _deliver(home: Path, name: str, data: bytes) -> None:
    (home / "mail" / "new" / name).write_bytes(data)
    _cli(home, "watch", "--once")


def _prepare(root: Path, scene: str) -> None:
    """Make the scratch folder `root`: the example's files in it, and its home in root/home at `scene`."""
    example = (default_templates() / "plans" / "example.md").read_text(encoding="utf-8")
    for name in ("acme.md", "plan.md", "old-acme.md", "plans/acme.md"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(example, encoding="utf-8")
    (root / "changes.json").write_text('[{"op": "move", "milestone": "M3", "due": "2027-03-08"}]')
    (root / "reply.eml").write_bytes(_email("<r1.dana@acme.example>", CHANGE))
    home = root / "home"
    _cli(home, "init", str(home))
    # The replies below are stamped by the demo's mail server (pipeline.demo.reply): trusted, they are acted on.
    settings = home / "mutualplan.toml"
    settings.write_text(settings.read_text(encoding="utf-8").replace(
        '# trusted_authserv_ids = ["mx.example.com"]', 'trusted_authserv_ids = ["mx.northwind.example"]', 1),
        encoding="utf-8")
    if scene == "fresh":
        return
    _cli(home, "add", str(root / "acme.md"))
    if scene == "queued":
        # Version 1's email queued, and not sent yet (the mailbox was down, say): what `outbox` lists and cancels.
        from pipeline.home import Home
        from pipeline.loop.service import queue_plan

        with Home(home).open_store() as store:
            queue_plan(store, PLAN, at=datetime.now(UTC))
        return
    _cli(home, "send", PLAN)
    if scene in {"waiting", "three"}:
        _deliver(home, "r1", _email("<r1.dana@acme.example>", CHANGE))
    if scene == "three":
        _cli(home, "approve", PLAN)
        _cli(home, "done", PLAN, "M1")
    if scene == "declined":
        _deliver(home, "no", _email("<no.dana@acme.example>", "Hi Jordan,\n\nWe have decided not to go ahead.\n"))
    if scene == "held":
        for n, (name, email) in enumerate((("Dana Whitfield", "dana.whitfield@acme.example"),
                                            ("Raj Patel", "raj.patel@acme.example"))):
            _deliver(home, f"c{n}", _email(f"<c{n}@acme.example>", "Confirmed - thanks Jordan.\n", (name, email), n))
        _deliver(home, "r2", _email("<r2.dana@acme.example>", CHANGE, minutes=5))


@pytest.fixture(scope="module")
def scenes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each scene made once, copied for each command."""
    made = {}
    for scene in sorted({*SCENES.values(), "sent"}):
        made[scene] = tmp_path_factory.mktemp(scene)
        _prepare(made[scene], scene)
    return made


def _run_line(line: str, root: Path, exits: set[int], monkeypatch: pytest.MonkeyPatch | None = None) -> None:
    """Run one example line as the shell would: `&&` steps, `# ...` comments, pipes, `> FILE` and `export`."""
    words = shlex.split(line, comments=True)
    steps: list[list[str]] = [[]]
    for word in words:
        steps.append([]) if word == "&&" else steps[-1].append(word)
    for step in steps:
        args = step[: step.index("|")] if "|" in step else step  # what it is piped to only reads it
        out = ""
        if ">" in args:
            args, out = args[: args.index(">")], args[args.index(">") + 1]
        if args[0] == "echo":
            if out:
                (root / out).write_text(args[1] + "\n")
            continue
        if args[0] == "export" and monkeypatch is not None:
            name, _, value = args[1].partition("=")
            monkeypatch.setenv(name, str(Path(value).expanduser()))
            continue
        if args[0] == "vi":
            continue  # the seller edits the file here; unchanged, it still runs
        assert args[0] == "mutualplan", f"an example runs something unknown: {line}"
        args = [str(Path(a).expanduser()) if a.startswith("~") else a for a in args[1:]]
        if "--home" not in args:
            args = ["--home", str(root / "home"), *args]
        result = CliRunner().invoke(main, args)
        assert result.exit_code in exits, f"{line!r} exited {result.exit_code}:\n{result.output}"
        if "--json" in args:
            json.loads(result.output)
        if out:
            (root / out).write_text(result.output)


def _team(root: Path, path: list[str], request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """A team on the test PostgreSQL in root/team (seller jo in it, but for add-seller's examples, which add jo)."""
    from pipeline.team.settings import TEAM_FILE, add_seller, init_team

    server = request.getfixturevalue("postgres_server")
    url = server.create_database(f"help_{'_'.join(path).replace('-', '_')}")
    init_team(root / "team", url)
    if path != ["team", "add-seller"]:
        add_seller(root / "team" / TEAM_FILE, {"id": "jo", "seller": {"name": "Jo Park", "email": "jo@seller.example"},
                                               "mailbox": {"backend": "maildir", "path": str(root / "mail-jo")}})
    monkeypatch.setenv("MUTUALPLAN_TEAM", str(root / "team"))
    if path[1:] and path[1] in TEAM_PLAN:
        _team_plan(root, agreed=TEAM_PLAN[path[1]])


# The team commands whose examples work on jo's plan, and whether it must be agreed (a certificate's is).
TEAM_PLAN = {"send": False, "export": True, "certificate": True}


def _team_plan(root: Path, *, agreed: bool) -> None:
    """Jo's copy of the example plan in the team's store; when `agreed`, sent and confirmed by both its confirming
    contacts on a call (the seller's word)."""
    from pipeline.team.parts import seller_service
    from pipeline.team.settings import TEAM_FILE, load_team
    from pipeline.team.store import TeamStore

    team = load_team(root / "team" / TEAM_FILE)
    team_store = TeamStore(team.store_url)
    try:
        with seller_service(team_store, team.seller("jo"), root) as jo:
            jo.add_source((default_templates() / "plans" / "example.md").read_text(encoding="utf-8"), file="acme.md")
            if agreed:
                jo.send_plan(PLAN)
                for contact in ("dana.whitfield@acme.example", "raj.patel@acme.example"):
                    jo.confirm_on_call(PLAN, contact, note="Confirmed on the call of 12 January")
    finally:
        team_store.close()


@pytest.mark.slow
@pytest.mark.parametrize("path", commands(), ids=" ".join)
def test_every_help_example_runs(path: list[str], scenes: dict[str, Path], tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    root = tmp_path / "scratch"
    shutil.copytree(scenes[SCENES.get(path[0], "sent")], root)
    monkeypatch.chdir(root)
    monkeypatch.setenv("HOME", str(root))
    if path[0] in ("team", "worker"):
        _team(root, path, request, monkeypatch)
    for name in WRITES.get(path[0], []):
        (root / name).unlink()
    for args in BEFORE.get(" ".join(path), []):
        _cli(root / "home", *args)
    lines = [line for line in examples(path) if line not in SKIPPED]
    assert lines, f"`mutualplan {' '.join(path)} --help` has no example to run"
    for line in lines:
        _run_line(line, root, {0} | EXITS.get(path[0], set()), monkeypatch)


def test_the_runner_refuses_a_failing_example(scenes: dict[str, Path], tmp_path: Path) -> None:
    root = tmp_path / "scratch"
    shutil.copytree(scenes["fresh"], root)
    with pytest.raises(AssertionError, match="exited 2"):
        _run_line(f"mutualplan parse-reply {PLAN} reply.eml --json > reply.json", root, {0})
