"""Tests of k8sauthn.token."""
