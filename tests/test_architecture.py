"""The architecture's rule that import-linter does not check: no module imports another module's private names."""

from __future__ import annotations

import ast
from pathlib import Path

SCANNER = Path(__file__).resolve().parents[1] / "scanner"


def private_imports(package: Path) -> list[str]:
    """`path:line imports module._name` for every import of a private name from another module of `package`."""
    found = []
    for path in sorted(package.rglob("*.py")):
        own = ".".join(path.relative_to(package.parent).with_suffix("").parts)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == package.name):
                continue
            if node.module == own:
                continue
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    where = path.relative_to(package.parent)
                    found.append(f"{where}:{node.lineno} imports {node.module}.{alias.name}")
    return found


def test_no_module_imports_another_modules_private_names() -> None:
    assert private_imports(SCANNER) == []


def test_the_check_sees_a_private_import(tmp_path: Path) -> None:
    package = tmp_path / "scanner"
    (package / "inventory").mkdir(parents=True)
    (package / "inventory" / "build.py").write_text("def _hidden() -> None: ...\n", encoding="utf-8")
    (package / "chain.py").write_text("from scanner.inventory.build import _hidden, __doc__\n", encoding="utf-8")
    assert private_imports(package) == ["scanner/chain.py:1 imports scanner.inventory.build._hidden"]
