"""playbooks/templates.yml (roles/coder_templates) against a real Coder: both templates active, re-run changed=0."""

from __future__ import annotations

import base64
import uuid

import pytest


@pytest.fixture()
def token_secret(kube, coder):
    """The admin token in a throwaway namespace, as the coder_admin role leaves it."""
    from kubernetes import client

    ns = "tpl-it-" + uuid.uuid4().hex[:6]
    core = client.CoreV1Api(kube)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    core.create_namespaced_secret(
        ns,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="coder-admin-token"),
            data={"token": base64.b64encode(coder.token.encode()).decode()},
        ),
    )
    yield ns
    core.delete_namespace(ns)


def test_playbook_leaves_both_templates_active_and_rerun_changes_nothing(coder, token_secret, playbook):
    extra = {
        "coderstack_coder_url": coder.url,
        "coderstack_namespace": token_secret,  # where the connection's token Secret is
        "coderstack_workspace_image": "127.0.0.1:15000/coderstack/workspace:role-it",
        # no image of that name exists: the agent URL probe has its own tests (tests/integration/workspace)
        "coder_templates_agent_probe": False,
    }
    first = playbook("playbooks/templates.yml", extra_vars=extra)
    assert first.rc == 0, first.output[-3000:]
    client = coder.client()
    for name in ("kubernetes-dind", "kubernetes-ollama"):
        tpl = client.request("GET", f"/api/v2/organizations/default/templates/{name}")
        version = client.request("GET", f"/api/v2/templateversions/{tpl['active_version_id']}")
        assert version["job"]["status"] == "succeeded"
    dind = client.request("GET", "/api/v2/organizations/default/templates/kubernetes-dind")
    assert dind["display_name"] == "Kubernetes (docker-in-docker)"
    params = client.request("GET", f"/api/v2/templateversions/{dind['active_version_id']}/rich-parameters")
    assert {p["name"]: p["default_value"] for p in params}["image"] == extra["coderstack_workspace_image"]

    second = playbook("playbooks/templates.yml", extra_vars=extra)
    assert second.rc == 0, second.output[-3000:]
    assert second.changed == 0, second.stdout[-3000:]
