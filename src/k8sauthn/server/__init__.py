"""The reference server: ``k8sauthn serve``, its ASGI app and its TLS layer.

* :mod:`k8sauthn.server.tls` runs any ASGI app behind kube-apiserver-style TLS (a client
  certificate is requested, not verified, and reaches the app as the ASGI ``tls`` extension);
* :mod:`k8sauthn.server.app` is the reference app (SelfSubjectReview, TokenReview, health,
  metrics).

Nothing is imported here, so ``import k8sauthn.server`` needs no server dependency.
"""
