"""The import structure, read from the source with `ast`: which way the arrows between packages run.

- no import cycle between top-level packages (the product's, and its clients: tiny_tir, bench, tests);
- no product module imports a command line (`inference.cli`, a `__main__`): they are the outermost layer;
- no bench or test reaches into a private name of the product (`_name`, a `_module`, `module._name`);
- no test module (`test_*.py`) imports another one: what tests share lives in a helper module or a fixture.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = ("aimo", "inference", "sandbox_service")  # what users install and run
CLIENTS = ("tiny_tir", "bench", "scripts", "tests")  # first-party code that uses the product
FIRST_PARTY = PRODUCT + CLIENTS
SKIP_PARTS = {".venv", ".venv-sandbox", "__pycache__", "models", "runs", "node_modules"}


@dataclass(frozen=True)
class Import:
    module: str  # the importing module, dotted
    target: str  # the imported module, dotted (absolute)
    names: tuple[str, ...]  # the names taken from it (`from target import a, b`); () for `import target`
    line: int

    def __str__(self) -> str:
        taken = f" ({', '.join(self.names)})" if self.names else ""
        return f"{self.module}:{self.line} imports {self.target}{taken}"


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def python_files(root: Path = ROOT) -> Iterator[Path]:
    for top in FIRST_PARTY:
        for path in sorted((root / top).rglob("*.py")):
            if not SKIP_PARTS & set(path.relative_to(root).parts) and not path.name.endswith(("_pb2.py", "_grpc.py")):
                yield path


def _absolute(module: str, is_package: bool, level: int, target: str | None) -> str:
    if level == 0:
        return target or ""
    package = module.split(".") if is_package else module.split(".")[:-1]
    base = package[: len(package) - (level - 1)]
    return ".".join([*base, target] if target else base)


def imports_of(source: str, module: str, is_package: bool = False) -> Iterator[Import]:
    """Every import in the source (top level or inside functions), with private attribute uses of an
    imported first-party module (`cli._sandbox`) reported as imports of that name."""
    tree = ast.parse(source)
    bound: dict[str, str] = {}  # local name -> the first-party module it is bound to
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(module, alias.name, (), node.lineno)
                top = alias.name.split(".")[0]
                if top in FIRST_PARTY:  # `import a.b` binds `a`; `import a.b as c` binds `c` to a.b
                    bound[alias.asname or top] = alias.name if alias.asname else top
        elif isinstance(node, ast.ImportFrom):
            target = _absolute(module, is_package, node.level, node.module)
            yield Import(module, target, tuple(a.name for a in node.names), node.lineno)
            if target.split(".")[0] in FIRST_PARTY:
                for alias in node.names:  # `from inference import cli` binds a module too
                    bound[alias.asname or alias.name] = f"{target}.{alias.name}"
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in bound
                and _private(node.attr)):
            yield Import(module, bound[node.value.id], (node.attr,), node.lineno)


def all_imports(root: Path = ROOT) -> list[Import]:
    found = []
    for path in python_files(root):
        found.extend(imports_of(path.read_text(), module_name(path, root), path.name == "__init__.py"))
    return [i for i in found if i.target.split(".")[0] in FIRST_PARTY]


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _top(module: str) -> str:
    return module.split(".")[0]


def package_cycles(found: list[Import]) -> list[list[str]]:
    """Cycles in the graph of top-level packages (an edge: some module of one imports the other)."""
    edges: dict[str, set[str]] = {}
    for i in found:
        if _top(i.module) != _top(i.target):
            edges.setdefault(_top(i.module), set()).add(_top(i.target))
    cycles, state = [], {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                cycles.append([*path[path.index(nxt):], nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    return cycles


def is_cli(module: str) -> bool:
    return module == "inference.cli" or module.endswith(".__main__")


def cli_imports(found: list[Import]) -> list[Import]:
    """Product modules (not command lines themselves) that import a command line."""
    return [i for i in found if _top(i.module) in PRODUCT and not is_cli(i.module)
            and (is_cli(i.target) or any(is_cli(f"{i.target}.{n}") for n in i.names))]


def private_imports(found: list[Import]) -> list[Import]:
    """Benches and tests taking a private name (or a private module) of the product."""
    return [i for i in found if _top(i.module) in ("bench", "tests") and _top(i.target) in PRODUCT
            and (any(_private(p) for p in i.target.split(".")) or any(_private(n) for n in i.names))]


def _is_test_module(module: str) -> bool:
    return _top(module) == "tests" and module.rsplit(".", 1)[-1].startswith("test_")


def imports_between_tests(found: list[Import]) -> list[Import]:
    """Test modules importing another test module (or a name from one)."""
    return [i for i in found if _is_test_module(i.module)
            and (_is_test_module(i.target) or any(_is_test_module(f"{i.target}.{n}") for n in i.names))]


FOUND = all_imports()


def test_the_walk_sees_the_packages():
    modules = {i.module for i in FOUND}
    assert {"inference.solver", "sandbox_service.server", "tiny_tir.evaluate", "bench.tir_loop"} <= modules
    assert any(i.target == "inference.assembly" for i in FOUND)


def test_no_import_cycle_between_top_level_packages():
    assert package_cycles(FOUND) == []


def test_no_product_module_imports_a_command_line():
    assert [str(i) for i in cli_imports(FOUND)] == []


def test_benches_and_tests_import_no_private_name_of_the_product():
    assert [str(i) for i in private_imports(FOUND)] == []


def test_no_test_module_imports_another():
    assert [str(i) for i in imports_between_tests(FOUND)] == []
