"""Helpers of the cluster-layer tests (a uniquely named module: several test dirs have a conftest.py)."""

from __future__ import annotations

from pathlib import Path

from helpers.parts import need

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
LAYER = HERE / "layer.yml"
MINIKUBE_STANDIN = REPO / "testbed" / "standins" / "minikube"

__all__ = ["LAYER", "MINIKUBE_STANDIN", "REPO", "namespace_exists", "need"]


def namespace_exists(core, name: str) -> bool:
    from kubernetes.client.exceptions import ApiException

    try:
        core.read_namespace(name)
        return True
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
