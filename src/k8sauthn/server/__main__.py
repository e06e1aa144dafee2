"""``python -m k8sauthn.server [flags]`` is ``k8sauthn serve [flags]``."""

from __future__ import annotations

import sys

from ..cli import main

if __name__ == "__main__":  # pragma: no cover - exercised through the console script
    sys.exit(main(["serve", *sys.argv[1:]]))
