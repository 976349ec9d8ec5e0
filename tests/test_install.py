"""Installed like any Python tool: a wheel built from the tree runs the demo, init and render outside the clone."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _run(args: list[str], cwd: Path, env: dict[str, str], timeout: int = 300) -> subprocess.CompletedProcess[str]:
    """Run a command, failing the test with its output when it fails."""
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, f"{args} exited {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str], Path]:
    """A wheel of the tree installed into a new virtualenv; its `mutualplan`, an environment and a cwd outside."""
    base = tmp_path_factory.mktemp("install")
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "MUTUALPLAN_TEMPLATES", "MUTUALPLAN_HOME"}}
    # Built from a copy, so the build leaves nothing in the clone and nothing stale from an earlier build.
    tree = base / "tree"
    shutil.copytree(REPO, tree, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", "*-home", ".*_cache", ".hypothesis"))
    wheels = base / "wheels"
    _run([sys.executable, "-m", "pip", "wheel", str(tree), "--no-deps", "-q", "-w", str(wheels)], base, env)
    wheel = next(wheels.glob("mutualplan-*.whl"))
    venv = base / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], base, env)
    # The dependencies come from the running environment's site-packages (appended after the venv's own, so
    # the wheel's `pipeline` is the one imported); only the wheel itself is installed.
    python = venv / "bin" / "python"
    own = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], base, env)
               .stdout.strip())
    (own / "dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", "--no-index",
          str(wheel)], base, env)
    outside = base / "elsewhere"
    outside.mkdir()
    where = _run([str(python), "-c", "import pipeline; print(pipeline.__file__)"], outside, env).stdout
    assert str(venv) in where and str(REPO) not in where, where
    return venv / "bin" / "mutualplan", env, outside


def test_the_installed_demo_reaches_agreement(installed: tuple[Path, dict[str, str], Path]) -> None:
    mutualplan, env, outside = installed
    home = outside / "home"
    done = _run([str(mutualplan), "--home", str(home), "demo", "--fresh", "--json"], outside, env)
    data = json.loads(done.stdout)
    assert data["status"]["state"] == "agreed" and data["status"]["version"] == 2
    assert sorted(data["status"]["confirmed"]) == ["dana.whitfield@acme.example", "raj.patel@acme.example"]


def test_the_installed_tool_inits_and_renders(installed: tuple[Path, dict[str, str], Path]) -> None:
    mutualplan, env, outside = installed
    home = outside / "fresh-home"
    _run([str(mutualplan), "init", str(home)], outside, env)
    assert (home / "mutualplan.toml").read_bytes() == (REPO / "config" / "mutualplan.toml").read_bytes()
    plan = outside / "plan.md"
    _run([str(mutualplan), "new", "--template", "smb", "--out", str(plan)], outside, env)
    pdf = outside / "plan.pdf"
    _run([str(mutualplan), "render", str(REPO / "templates" / "plans" / "example.md"), "--out", str(pdf)],
         outside, env)
    assert pdf.read_bytes().startswith(b"%PDF-")


def test_the_wheel_holds_the_data_files(installed: tuple[Path, dict[str, str], Path]) -> None:
    wheel = next((installed[0].parents[2] / "wheels").glob("mutualplan-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "pipeline/_data/config/mutualplan.toml" in names
    assert "pipeline/_data/templates/letter/base.html.j2" in names
    assert "pipeline/_data/templates/plans/example.md" in names
