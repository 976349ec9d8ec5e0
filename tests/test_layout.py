"""The import rules of docs/architecture.md, and the sizes worth keeping, checked on the source itself."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "pipeline"
ADAPTERS = ("pipeline.mailbox.maildir", "pipeline.mailbox.imap", "pipeline.mailbox.exchange", "pipeline.mailbox.graph")


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every pipeline module a file imports, at the top or inside a function (TYPE_CHECKING imports included)."""
    found: set[str] = set()
    package = _module(path) if path.name == "__init__.py" else _module(path).rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # a relative import, from the file's package up `level - 1` packages
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, base] if base else up)
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)
    return {name for name in found if name == "pipeline" or name.startswith("pipeline.")}


FILES = sorted(ROOT.rglob("*.py"))
IMPORTS = {_module(p): _imports(p) for p in FILES}


def _within(name: str, *prefixes: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _violations(of: str, allowed: tuple[str, ...]) -> dict[str, list[str]]:
    """Modules under `of` importing a pipeline module outside `allowed` (or their own package)."""
    bad: dict[str, list[str]] = {}
    for module, names in IMPORTS.items():
        if not _within(module, of):
            continue
        outside = sorted(n for n in names if n != "pipeline" and not _within(n, of, *allowed))
        if outside:
            bad[module] = outside
    return bad


def test_the_plan_core_imports_nothing_of_the_package_but_errors() -> None:
    assert _violations("pipeline.plan", ("pipeline.errors",)) == {}


@pytest.mark.parametrize("package", ["pipeline.replies", "pipeline.render"])
def test_readers_and_renderers_import_only_the_plan_core(package: str) -> None:
    assert _violations(package, ("pipeline.plan", "pipeline.errors")) == {}


def test_the_store_imports_only_the_plan_core() -> None:
    assert _violations("pipeline.store", ("pipeline.plan", "pipeline.errors")) == {}


@pytest.mark.parametrize("adapter", (*ADAPTERS, "pipeline.mailbox.memory"))
def test_a_mailbox_adapter_imports_only_the_protocol(adapter: str) -> None:
    allowed = ("pipeline.mailbox.base", "pipeline.errors", "pipeline.durable")
    assert _violations(adapter, allowed) == {}


def test_only_config_names_the_concrete_adapters() -> None:
    naming = {m for m, names in IMPORTS.items() if any(_within(n, *ADAPTERS) for n in names)}
    assert {m for m in naming if not _within(m, *ADAPTERS)} == {"pipeline.config"}


def test_the_cli_reaches_the_loop_through_its_service() -> None:
    reaching = {m: sorted(n for n in names if _within(n, "pipeline.loop") and n != "pipeline.loop"
                          and not _within(n, "pipeline.loop.service"))
                for m, names in IMPORTS.items() if _within(m, "pipeline.cli")}
    assert {m: n for m, n in reaching.items() if n} == {}


def test_nothing_below_the_cli_imports_it() -> None:
    assert {m for m, names in IMPORTS.items() if not _within(m, "pipeline.cli", "pipeline.__main__")
            and any(_within(n, "pipeline.cli") for n in names)} == set()


def test_the_root_holds_a_few_modules_each_named_for_what_it_holds() -> None:
    root = sorted(p.stem for p in ROOT.glob("*.py"))
    assert len(root) <= 11, root


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT.parent)))
def test_no_module_over_about_400_lines_and_no_class_over_about_250(path: Path) -> None:
    source = path.read_text(encoding="utf-8")
    assert source.count("\n") <= 420, "split the module by what it holds"
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ClassDef):
            assert node.end_lineno - node.lineno < 260, f"class {node.name} is over about 250 lines"  # type: ignore[operator]
