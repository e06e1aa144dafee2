"""Fixtures for the framework tests: real chains from a token file, and the docs examples."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from k8sauthn.config.build import Chain, build
from k8sauthn.config.options import AuthenticationOptions

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"
TOKENS = b'alice-token,alice,1001,"dev,ops"\nroot-token,root,0,admins\n'


def load_example(name: str) -> ModuleType:
    """Import ``docs/examples/<name>.py`` as a module (the docs examples are not a package)."""
    mod_name = f"k8sauthn_example_{name}"
    if mod_name in sys.modules:
        return sys.modules[mod_name]
    spec = importlib.util.spec_from_file_location(mod_name, EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def token_file(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("tokens") / "tokens.csv"
    path.write_bytes(TOKENS)
    return str(path)


@pytest.fixture(scope="session")
def chain(token_file: str) -> Chain:
    """The real kube-apiserver chain for a token file, anonymous off."""
    return build(AuthenticationOptions(token_auth_file=token_file, anonymous_auth=False))


@pytest.fixture(scope="session")
def anonymous_chain(token_file: str) -> Chain:
    """The same chain with --anonymous-auth=true."""
    return build(AuthenticationOptions(token_auth_file=token_file, anonymous_auth=True))
