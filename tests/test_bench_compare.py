"""benchmarks/compare.py: the median and spread of each figure over several runs, and the ratio of the medians."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.compare import compare, figures, load, table


def _run(read_reply: float, extract: float) -> dict:
    """One run's data with the replies section only, as `python -m benchmarks --only replies --json` writes it."""
    return {"replies": {"read_reply": read_reply, "extract": {"ours": {"rate": extract}}}}


def test_a_run_without_a_section_has_none_of_its_figures() -> None:
    found = figures(_run(500.0, 3000.0))
    assert found == {"replies: bytes -> interpretation (replies/s)": 500.0,
                     "replies: extract the new text, ours (replies/s)": 3000.0}


def test_median_spread_and_ratio(tmp_path: Path) -> None:
    for name, rates in (("old", (400.0, 500.0, 600.0)), ("new", (550.0, 450.0, 1000.0))):
        for i, rate in enumerate(rates):
            (tmp_path / f"{name}-{i}.json").write_text(json.dumps({"data": _run(rate, 10.0)}))
    rows = compare(load(str(tmp_path / "old-*.json")), load(str(tmp_path / "new-*.json")))
    text = table(rows, ("old", "new"))
    # Medians 500 and 550: 550 / 500 = 1.10; the spread is the lowest and highest of each side.
    assert "| replies: bytes -> interpretation (replies/s) | 500 (400-600) | 550 (450-1,000) | 1.10 |" in text
    assert "| replies: extract the new text, ours (replies/s) | 10.0 (10.0-10.0) | 10.0 (10.0-10.0) | 1.00 |" in text
    assert "3 / 3 runs)" in text


def test_no_file_matching_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="--json FILE"):
        load(str(tmp_path / "none-*.json"))
