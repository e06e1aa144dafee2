"""The public namespace and the import boundaries: where I/O libraries may appear."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import k8sauthn

SRC = Path(k8sauthn.__file__).parent
# Packages `import k8sauthn` must not pull in: HTTP, YAML, CEL, web frameworks and servers.
HEAVY = (
    "httpx",
    "yaml",
    "cel",
    "starlette",
    "fastapi",
    "litestar",
    "flask",
    "django",
    "rest_framework",
    "uvicorn",
    "h11",
    "OpenSSL",
    "prometheus_client",
    "kubernetes",
)


def _ruff_sort_key(name: str) -> tuple[int, str]:
    # ruff RUF022 ("isort-style"): SCREAMING_CASE, then CamelCase, then everything else.
    if name.isupper() or (name.replace("_", "").isupper() and len(name) > 1):
        return (0, name)
    if name[:1].isupper():
        return (1, name)
    return (2, name)


def test_all_is_sorted_and_unique() -> None:
    """__all__ is in ruff's isort-style order without duplicates."""
    assert sorted(k8sauthn.__all__, key=_ruff_sort_key) == k8sauthn.__all__
    assert len(set(k8sauthn.__all__)) == len(k8sauthn.__all__)


def test_all_names_resolve() -> None:
    """Every exported name exists (lazy ones included)."""
    for name in k8sauthn.__all__:
        assert getattr(k8sauthn, name) is not None, name


def test_public_names_are_exported() -> None:
    """Every public, non-module attribute of the package is listed in __all__."""
    import types

    public = {
        n
        for n, v in vars(k8sauthn).items()
        if not n.startswith("_")
        and not isinstance(v, types.ModuleType)
        and n not in ("TYPE_CHECKING", "Any")
    }
    assert public <= set(k8sauthn.__all__)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def test_httpx_only_under_io_and_server() -> None:
    """httpx is imported only in k8sauthn/io/ and k8sauthn/server/ (design: where I/O lives)."""
    offenders = [
        str(p.relative_to(SRC))
        for p in SRC.rglob("*.py")
        if "httpx" in _imports(p) and p.relative_to(SRC).parts[0] not in ("io", "server")
    ]
    assert offenders == []


def test_import_is_light() -> None:
    """`import k8sauthn` (in a fresh interpreter) loads no HTTP, YAML, CEL or web library."""
    code = (
        "import sys, k8sauthn\n"
        f"heavy = {HEAVY!r}\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & set(heavy)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"


def test_version() -> None:
    """The package has a version string."""
    assert isinstance(k8sauthn.__version__, str)
    assert k8sauthn.__version__
