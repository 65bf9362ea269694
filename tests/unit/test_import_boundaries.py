"""Nothing outside tests/ imports from it: the product, the benchmark, the chaos run,
the examples and the scripts use shared/ (product) and testing/ (harness) instead,
so tests/ can change without breaking them. And the product (what the image holds)
imports none of the harness: not tests/, testing/, bench/ or chaos/. A static scan of
the source."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SKIPPED = {"tests", ".venv", ".git", "var", "build", "node_modules"}
# `python -m tests.x` in a script or CI file.
RUNS_TESTS_MODULE = re.compile(r"-m\s+tests\.")


def _outside_tests(pattern: str) -> list[Path]:
    return [
        path for path in ROOT.rglob(pattern) if not SKIPPED & set(path.relative_to(ROOT).parts[:-1])
    ]


PRODUCT = ("shared", "services", "cli")
HARNESS = frozenset({"tests", "testing", "bench", "chaos"})


def imports_of_tests(source: str, packages: frozenset[str] = frozenset({"tests"})) -> list[str]:
    """Every `import tests...` / `from tests... import` in a module's source (or of
    any of `packages`)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split(".")[0] in packages]
        elif (
            isinstance(node, ast.ImportFrom)
            and node.level == 0
            and (node.module or "").split(".")[0] in packages
        ):
            found.append(str(node.module))
    return found


def test_the_scan_sees_both_forms_of_import() -> None:
    source = "import tests.support\nfrom tests.conftest import System\nfrom testing import x\n"
    assert imports_of_tests(source) == ["tests.support", "tests.conftest"]


def test_no_module_outside_tests_imports_tests() -> None:
    modules = _outside_tests("*.py")
    assert len(modules) > 100  # the scan does look at the source
    offenders = {
        str(path.relative_to(ROOT)): found
        for path in modules
        if (found := imports_of_tests(path.read_text()))
    }
    assert offenders == {}


def test_no_script_runs_a_module_of_tests() -> None:
    scripts = [*_outside_tests("*.sh"), ROOT / ".ci" / "run", ROOT / "Dockerfile"]
    offenders = [
        str(path.relative_to(ROOT))
        for path in scripts
        if RUNS_TESTS_MODULE.search(path.read_text())
    ]
    assert offenders == []


def test_the_product_imports_none_of_the_harness() -> None:
    modules = [path for package in PRODUCT for path in (ROOT / package).rglob("*.py")]
    assert len(modules) > 100
    offenders = {
        str(path.relative_to(ROOT)): found
        for path in modules
        if (found := imports_of_tests(path.read_text(), HARNESS))
    }
    assert offenders == {}
