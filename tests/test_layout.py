"""The layout holds: no import cycles in arena/ or ratings/ (imports inside functions count),
ratings/ never imports Django, and no module grows past ~600 lines without saying why."""

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import ratings
from tests.support import ROOT

TOP_LEVEL = {
    "pyproject.toml",
    "README.md",
    "manage.py",
    "arena",
    "ratings",
    "templates",
    "static",
    "tests",
    "Makefile",
    ".ci",
}
DOMAINS = (
    "core",
    "providers",
    "battles",
    "evalsets",
    "judging",
    "calibration",
    "leaderboards",
    "exchange",
    "demo",
    "accounts",
    "api",
    "quality",
)
MAX_LINES = 600
# Past MAX_LINES only with a reason in the module's docstring, named here.
LONG_ON_PURPOSE = {"ratings.cli": "one command: its options, reader and writers"}


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def import_graph(root: Path, packages=("arena", "ratings")) -> dict[str, set[str]]:
    """Module -> the project modules it imports, at any depth in the file (functions too)."""
    files = {
        module_name(path, root): path
        for package in packages
        for path in (root / package).rglob("*.py")
        if "migrations" not in path.parts
    }
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(parent + ([node.module] if node.module else []))
                targets.add(base)
                targets |= {f"{base}.{alias.name}" for alias in node.names}
        edges = set()
        for target in targets:
            while target and target not in files:  # `from pkg import name`: the module pkg
                target = target.rpartition(".")[0]
            if target and target != name:
                edges.add(target)
        graph[name] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph.get(node, ())):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                other = stack.pop()
                on_stack.discard(other)
                component.append(other)
                if other == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_top_level_has_the_agreed_layout():
    missing = {name for name in TOP_LEVEL if not (ROOT / name).exists()}
    assert not missing


def test_arena_has_one_folder_per_domain():
    missing = [d for d in DOMAINS if not (ROOT / "arena" / d / "__init__.py").exists()]
    assert not missing


def test_there_is_no_import_cycle():
    assert cycles(import_graph(ROOT)) == []


def test_the_cycle_check_finds_a_cycle_through_an_import_inside_a_function(tmp_path):
    pkg = tmp_path / "arena"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "one.py").write_text("from arena.sub.two import f\n")
    (pkg / "sub" / "two.py").write_text("def f():\n    from arena.sub import one\n")
    (pkg / "three.py").write_text("from .sub import one\n")
    (tmp_path / "ratings").mkdir()
    (tmp_path / "ratings" / "__init__.py").write_text("")
    assert cycles(import_graph(tmp_path)) == [["arena.sub.one", "arena.sub.two"]]


def test_imports_point_one_way_between_domains():
    """core <- providers <- battles <- the rest: a lower domain never imports a higher one."""
    order = {"core": 0, "providers": 1, "battles": 2}
    problems = []
    for module, targets in import_graph(ROOT).items():
        parts = module.split(".")
        if parts[0] != "arena" or len(parts) < 3 or parts[1] not in order:
            continue
        for target in targets:
            tparts = target.split(".")
            if (
                len(tparts) >= 2
                and tparts[0] == "arena"
                and tparts[1] in DOMAINS
                and tparts[1] != parts[1]
                and order.get(tparts[1], 3) > order[parts[1]]
            ):
                problems.append(f"{module} -> {target}")
    assert problems == []


def test_ratings_never_imports_django():
    offenders = [
        path
        for path in (ROOT / "ratings").rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Import | ast.ImportFrom)
        and any(
            (name or "").split(".")[0] == "django"
            for name in (
                [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
            )
        )
    ]
    assert offenders == []


@pytest.mark.parametrize("package", ["arena", "ratings"])
def test_no_module_is_long_without_saying_why(package):
    long = {
        module_name(path, ROOT): n
        for path in (ROOT / package).rglob("*.py")
        if "migrations" not in path.parts and (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    unexplained = {name: n for name, n in long.items() if name not in LONG_ON_PURPOSE}
    assert unexplained == {}


def test_ratings_imports_with_django_unavailable():
    modules = sorted(m.name for m in pkgutil.walk_packages(ratings.__path__, "ratings."))
    modules = [m for m in modules if not m.endswith("__main__")]
    assert modules, "ratings has no modules"
    # A None entry in sys.modules makes `import django` raise ImportError in the child.
    code = (
        "import sys, importlib\n"
        "sys.modules['django'] = None\n"
        f"for name in ['ratings', *{modules!r}]:\n"
        "    importlib.import_module(name)\n"
        "assert not any(m == 'django' or m.startswith('django.') for m in sys.modules"
        " if sys.modules[m] is not None)\n"
        "print('ok')\n"
    )
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
