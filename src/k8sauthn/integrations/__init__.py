"""Framework integrations: Starlette, FastAPI, Litestar, Flask, Django (and DRF).

Each module imports its framework, so import the one you use (``k8sauthn.integrations.fastapi``);
``import k8sauthn`` and this package import none of them. Install with the matching extra, e.g.
``pip install 'k8sauthn[fastapi]'``.
"""
