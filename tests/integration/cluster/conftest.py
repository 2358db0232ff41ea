"""Fixtures for the cluster-layer tests (roles preflight, ingress, storage, postgres) on the testbed."""

from __future__ import annotations

import uuid

import pytest
from cluster_helpers import MINIKUBE_STANDIN, need


@pytest.fixture()
def core(kube):
    from kubernetes import client

    return client.CoreV1Api(kube)


@pytest.fixture()
def namespace(core):
    """A fresh namespace name (not created); deleted after the test if something created it."""
    from kubernetes.client.exceptions import ApiException

    name = f"cs-cl-{uuid.uuid4().hex[:8]}"
    yield name
    try:
        core.delete_namespace(name)
    except ApiException as exc:
        if exc.status != 404:
            raise


@pytest.fixture()
def postgres_url(testbed) -> str:
    try:
        url = testbed.read("postgres-url")
    except OSError:
        url = ""
    need(bool(url), "the testbed's PostgreSQL is not running (testbed/svc_20_postgres.sh start)")
    return url


@pytest.fixture()
def minikube_node(core):
    """Label one simulated node like minikube does; removed afterwards."""
    node = core.list_node().items[-1].metadata.name
    core.patch_node(node, {"metadata": {"labels": {"minikube.k8s.io/name": "standin"}}})
    yield node
    core.patch_node(node, {"metadata": {"labels": {"minikube.k8s.io/name": None}}})


@pytest.fixture()
def minikube_standin(tmp_path, testbed):
    """Environment for the minikube CLI stand-in; .calls() returns the recorded calls."""
    log = tmp_path / "minikube-calls.log"

    class Standin:
        binary = str(MINIKUBE_STANDIN)
        env = {
            "MINIKUBE_STANDIN_LOG": str(log),
            "MINIKUBE_STANDIN_STATE": str(tmp_path / "minikube-addons.state"),
            "MINIKUBE_STANDIN_KUBECONFIG": str(testbed.kubeconfig),
        }

        @staticmethod
        def calls() -> list[str]:
            return log.read_text().splitlines() if log.exists() else []

    return Standin()
