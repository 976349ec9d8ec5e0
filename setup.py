"""Ship the templates and the example settings inside the package, so an installed `mutualplan` finds them."""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
# The folders stay at the top of the source tree (where the docs and the letterheads' authors look for them);
# a build copies them to pipeline/_data/, where pipeline/render/templates.py and pipeline/home.py look first.
SHIPPED = ("templates", "config")


class BuildWithData(build_py):
    """build_py that also copies the shipped folders into the built package."""

    def run(self) -> None:
        """Build the modules, then copy templates/ and config/ beside them (not for an editable install)."""
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads the source tree's folders
        for name in SHIPPED:
            target = Path(self.build_lib) / "pipeline" / "_data" / name
            shutil.rmtree(target, ignore_errors=True)  # a file removed from the tree must not linger from a last build
            shutil.copytree(ROOT / name, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


setup(cmdclass={"build_py": BuildWithData})
