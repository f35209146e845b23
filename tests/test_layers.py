"""Apps depend one way: practice core <- scheduling <- alliance. This reads the import
statements of every module, so a new import against the grain fails here."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# The practice package's top-layer page modules may compose scheduling and alliance.
TOP_LAYER = {"home.py", "caseload.py", "caseload_views.py", "caseload_urls.py", "matching.py"}
TOP_LAYER_PREFIXES = ("imports", "import_")


def imported_apps(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
    return found


def modules(app: str) -> list[Path]:
    return [
        path
        for path in (ROOT / app).rglob("*.py")
        if "migrations" not in path.parts
        and not (
            app == "practice"
            and path.parent == ROOT / "practice"
            and (path.name in TOP_LAYER or path.name.startswith(TOP_LAYER_PREFIXES))
        )
        and not (app == "practice" and "commands" in path.parts and "import" in path.name)
    ]


@pytest.mark.parametrize(
    ("app", "forbidden"),
    [("practice", {"scheduling", "alliance"}), ("scheduling", {"alliance"})],
)
def test_a_lower_app_never_imports_a_higher_one(app: str, forbidden: set[str]) -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(imported_apps(path) & forbidden)
        for path in modules(app)
        if imported_apps(path) & forbidden
    }
    assert offenders == {}
