"""The YAML examples in the docs load and validate: the docs cannot drift from the code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from k8sauthn.config.authentication import load_authentication_config
from tests._pki import Cert

DOCS = Path(__file__).resolve().parents[2] / "docs"
CA_PLACEHOLDER = "      -----BEGIN CERTIFICATE-----\n      ...\n      -----END CERTIFICATE-----\n"


def yaml_blocks(name: str) -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", (DOCS / name).read_text(), re.DOTALL)


def test_complete_example_loads() -> None:
    """The full example of docs/authentication-config.md is a valid configuration."""
    pem = Cert.new_ca("docs-ca").pem.decode()
    block = yaml_blocks("authentication-config.md")[0]
    assert CA_PLACEHOLDER in block
    block = block.replace(CA_PLACEHOLDER, "".join(f"      {line}\n" for line in pem.splitlines()))
    cfg = load_authentication_config(block.encode())
    assert cfg.jwt[0].issuer.url == "https://issuer.example.com"
    assert cfg.anonymous is not None


def test_email_rule_example_loads() -> None:
    """The email-rule snippet satisfies the rule it illustrates."""
    head = (
        "apiVersion: apiserver.config.k8s.io/v1\nkind: AuthenticationConfiguration\njwt:\n"
        "- issuer: {url: 'https://x.example.com', audiences: [a]}\n"
    )
    snippet = yaml_blocks("authentication-config.md")[1]
    body = "".join(f"  {line}\n" for line in snippet.strip().splitlines())
    assert load_authentication_config((head + body).encode()).jwt[0].claim_validation_rules


@pytest.mark.parametrize("index", [0])
def test_oidc_flags_file_example_loads(index: int) -> None:
    """The flags-to-file example of docs/oidc-flags.md is valid."""
    cfg = load_authentication_config(yaml_blocks("oidc-flags.md")[index].encode())
    assert cfg.jwt[0].claim_mappings.groups.prefix == "oidc:"
