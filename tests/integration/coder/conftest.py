"""Fixtures for the Coder module tests: throwaway REAL Coder servers on loopback (tests/helpers/coder_server.py)."""

from __future__ import annotations

import uuid

import pytest
from coder_it import ADMIN, CoderClient, CoderServer, run_module
from helpers.coder_server import need_coder_parts


@pytest.fixture()
def fresh_coder(tmp_path_factory):
    """An empty Coder (no first user yet), for this test only."""
    need_coder_parts()
    srv = CoderServer(tmp_path_factory.mktemp("coder")).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def coder_server(tmp_path_factory):
    """One throwaway Coder for the session, with its first user ADMIN."""
    need_coder_parts()
    srv = CoderServer(tmp_path_factory.mktemp("coder")).start()
    c = srv.client()
    c.create_first_user(ADMIN["username"], ADMIN["email"], ADMIN["password"], ADMIN["name"])
    session = c.login(ADMIN["email"], ADMIN["password"])
    srv.admin_token = CoderClient(srv.url, token=session).create_token("me", "it-admin", 86400)
    yield srv
    srv.stop()


@pytest.fixture()
def admin_client(coder_server) -> CoderClient:
    return coder_server.client(coder_server.admin_token)


@pytest.fixture()
def namespace(kube):
    """A throwaway Kubernetes namespace on the testbed API server for the Secrets."""
    from kubernetes import client

    name = "coder-it-" + uuid.uuid4().hex[:6]
    core = client.CoreV1Api(kube)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    core.delete_namespace(name)


@pytest.fixture()
def module():
    return run_module
