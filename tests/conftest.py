"""Shared fixtures: generated PKI, a fixed clock, and tool discovery for integration tests."""

from __future__ import annotations

import os
import shutil
from collections.abc import Generator
from typing import Any

import pytest

from k8sauthn import Context, run_pure

from ._pki import Cert

IN_CI = os.environ.get("CI") == "true"


def require_tool(name: str) -> str:
    """The path of an external program; skip when it is missing locally, fail in CI."""
    path = shutil.which(name) or (
        f"/usr/sbin/{name}" if os.path.exists(f"/usr/sbin/{name}") else None
    )
    if path is None:
        if IN_CI:
            pytest.fail(f"{name} is required in CI (.ci/run installs it)")
        pytest.skip(f"{name} is not installed")
    return path


def finish(flow: Generator[Any, Any, Any], value: Any = None) -> Any:
    """Send ``value`` into a flow waiting on an effect and return what the flow returns."""
    try:
        flow.send(value)
    except StopIteration as stop:
        return stop.value
    raise AssertionError("the flow asked for another effect")


@pytest.fixture
def ctx() -> Context:
    return Context(now=1_800_000_000.0)


@pytest.fixture(scope="session")
def root_ca() -> Cert:
    return Cert.new_ca("k8sauthn-test-root")


__all__ = ["IN_CI", "finish", "require_tool", "run_pure"]
