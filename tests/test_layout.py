import pkgutil
import subprocess
import sys

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


def test_the_top_level_has_the_agreed_layout():
    missing = {name for name in TOP_LEVEL if not (ROOT / name).exists()}
    assert not missing


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
