"""How a reply fixture's expected JSON is compared with an interpretation (the rules of the examples' README)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures"
REPLIES = FIXTURES / "replies"
PLANS = {"example-plan.md": FIXTURES / "example-plan.md"}
# The domain our own Message-IDs use in the fixtures (the example plan's seller).
SELLER_DOMAINS = ("northwind.example",)


def mismatches(expected: dict[str, Any], actual: dict[str, Any]) -> list[str]:
    """What differs: a plain key must be equal, a key ending in `~` contained (case-insensitive);
    `changes` must hold the same changes in order, each compared the same way on the fields it names.
    Keys starting with `_` are notes for people and the test harness, not expectations."""
    problems: list[str] = []
    for key, want in expected.items():
        if key.startswith("_"):
            continue
        if key == "changes":
            got = actual.get("changes") or []
            if len(got) != len(want):
                problems.append(f"changes: expected {len(want)}: {want}, got {len(got)}: {got}")
                continue
            for index, (w, g) in enumerate(zip(want, got, strict=True)):
                for sub in mismatches(w, g):
                    problems.append(f"changes[{index}].{sub}")
            continue
        problems.extend(_compare(key, want, actual))
    return problems


def _compare(key: str, want: Any, actual: dict[str, Any]) -> list[str]:
    if key.endswith("~"):
        name = key[:-1]
        got = actual.get(name)
        if isinstance(want, list):
            missing = [w for w in want if not any(str(w).lower() in str(g).lower() for g in (got or []))]
            return [f"{name}: expected items containing {missing}, got {got!r}"] if missing else []
        if got is None or str(want).lower() not in str(got).lower():
            return [f"{name}: expected to contain {want!r}, got {got!r}"]
        return []
    got = actual.get(key)
    if got != want:
        return [f"{key}: expected {want!r}, got {got!r}"]
    return []


def fixture_names() -> list[str]:
    """Every fixture that has both its .eml and its expected .json."""
    return sorted(p.stem for p in REPLIES.glob("*.eml") if p.with_suffix(".json").exists())
