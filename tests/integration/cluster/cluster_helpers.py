"""Helpers of the cluster-layer tests (a uniquely named module: several test dirs have a conftest.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
LAYER = HERE / "layer.yml"
MINIKUBE_STANDIN = REPO / "tests" / "fixtures" / "bin" / "minikube"


def need(condition: bool, reason: str) -> None:
    """Skip (developer machine) or fail (CI) when a real part is missing; same rule as tests/conftest.py."""
    if condition:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"required part missing in CI: {reason}")
    pytest.skip(reason)


def namespace_exists(core, name: str) -> bool:
    from kubernetes.client.exceptions import ApiException

    try:
        core.read_namespace(name)
        return True
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
