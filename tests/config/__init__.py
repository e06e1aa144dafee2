"""Tests of k8sauthn.config."""
