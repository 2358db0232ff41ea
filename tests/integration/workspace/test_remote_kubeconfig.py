"""Walkthrough 002's other cluster: Coder provisions workspaces through a kubeconfig mounted from a Secret.

The testbed stands for the second cluster and its administrator: it makes an identity (ServiceAccount
testbed-remote/coder-provisioner) allowed to manage Deployments and PersistentVolumeClaims in namespace
testbed-remote and nothing else, and writes its kubeconfig (testbed/manifests/remote-workspaces.yaml,
svc_50_addons.sh). The testbed inventory hands that file to the coder role as the walkthrough does
(`coder_workspace_kubeconfig_file`, Secret `kubeconfig-secret` mounted at /mnt/secrets/kube). Here a template made from
templates/kubernetes-ollama with `use_kubeconfig = true` creates carol's workspace there; its agent connects to the
access URL through the ingress, as an agent on another cluster would.

Which identity made the objects: Coder's own service account may not create anything in testbed-remote (and the
kubeconfig's identity may: the positive control), so only the mounted kubeconfig can have made them; and with the
kubeconfig's RoleBinding removed, a build fails with the API server's denial naming that identity, as coder_workspace
reports it.
"""

from __future__ import annotations

import base64
import hashlib
import time

import pytest
from helpers.modules import run_module
from helpers.parts import REPO, STATE
from helpers.pods import kubectl, workspace_image

pytestmark = pytest.mark.slow
NS = "coder"
REMOTE_NS = "testbed-remote"
REMOTE_SA = f"system:serviceaccount:{REMOTE_NS}:coder-provisioner"
CODER_SA = "system:serviceaccount:coder:coder"
TEMPLATE = "remote-ollama"
OWNER = "carol"


class Args(dict):
    """Module arguments that a traceback shows without the token."""

    def __repr__(self) -> str:
        return f"<coder_workspace arguments for {self['coder_url']}>"


def admin_args(kube) -> dict:
    from kubernetes import client

    token = client.CoreV1Api(kube).read_namespaced_secret("coder-admin-token", NS).data["token"]
    return Args(
        {
            "coder_url": "https://coder.testbed.local",
            "coder_token": base64.b64decode(token).decode(),
            "ca_path": str(STATE / "coder-ca.crt"),
        }
    )


def can(kube, user: str, verb: str, resource: str, group: str = "") -> bool:
    """SubjectAccessReview: may USER do VERB on RESOURCE in the remote namespace?"""
    from kubernetes import client

    review = client.AuthorizationV1Api(kube).create_subject_access_review(
        {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {
                "user": user,
                "groups": ["system:serviceaccounts", "system:authenticated"],
                "resourceAttributes": {"namespace": REMOTE_NS, "verb": verb, "group": group, "resource": resource},
            },
        }
    )
    return bool(review.status.allowed)


@pytest.fixture(scope="module")
def remote_template(converged, testbed, kube):
    """The kubeconfig Secret as the walkthrough makes it, the platform CA in the remote namespace (what the user copies
    to the other cluster), and the use_kubeconfig template; the template and its workspaces are removed after."""
    from kubernetes import client

    core = client.CoreV1Api(kube)
    secret = core.read_namespaced_secret("kubeconfig-secret", NS)
    # the file as the coder role stores it (Ansible's file lookup drops the final newline); compared by digest, so
    # a failure prints no token
    stored = hashlib.sha256(base64.b64decode(secret.data["config"])).hexdigest()
    assert stored == hashlib.sha256((STATE / "remote-kubeconfig").read_bytes().rstrip(b"\n")).hexdigest()
    ca = core.read_namespaced_config_map("coder-ca", "coder-workspaces").data["ca.crt"]
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "coder-ca"}, "data": {"ca.crt": ca}}
    try:
        core.create_namespaced_config_map(REMOTE_NS, cm)
    except client.ApiException as e:
        assert e.status == 409, e
        core.replace_namespaced_config_map("coder-ca", REMOTE_NS, cm)
    args = admin_args(kube)
    res = run_module(
        "coderstack.platform.coder_template",
        dict(
            args,
            name=TEMPLATE,
            directory=str(REPO / "templates/kubernetes-ollama"),
            variables={
                "namespace": REMOTE_NS,
                "use_kubeconfig": "true",
                "kubeconfig_path": "/mnt/secrets/kube/config",
                "image": workspace_image(kube),
                "ollama_install": "false",
                "coder_internal_url": "",
                "ca_configmap": "coder-ca",
            },
        ),
    )
    assert not res.get("failed"), res.get("msg")
    yield args
    for name in ("remote", "denied"):
        gone = run_module("coderstack.platform.coder_workspace", dict(args, owner=OWNER, name=name, state="absent"))
        assert not gone.get("failed"), gone.get("msg")
    res = run_module("coderstack.platform.coder_template", dict(args, name=TEMPLATE, state="absent"))
    assert not res.get("failed"), res.get("msg")
    core.delete_namespaced_config_map("coder-ca", REMOTE_NS)


def test_only_the_kubeconfig_identity_may_create_workspaces_there(kube):
    assert can(kube, REMOTE_SA, "create", "deployments", "apps")  # positive control
    assert can(kube, REMOTE_SA, "create", "persistentvolumeclaims")
    assert not can(kube, CODER_SA, "create", "deployments", "apps")
    assert not can(kube, CODER_SA, "create", "persistentvolumeclaims")
    assert not can(kube, REMOTE_SA, "get", "secrets")  # least privilege: nothing beyond the workspace objects
    assert not can(kube, REMOTE_SA, "create", "pods/exec")


def test_a_use_kubeconfig_workspace_is_made_by_that_identity_and_its_agent_connects(remote_template, testbed, kube):
    from kubernetes import client

    res = run_module(
        "coderstack.platform.coder_workspace",
        dict(remote_template, owner=OWNER, name="remote", template=TEMPLATE, parameters={"cpu": 2, "memory": 2}),
    )
    assert not res.get("failed"), res.get("msg")
    assert res["build"] == "create"
    ws = testbed.coder(kube, f"/api/v2/users/{OWNER}/workspace/remote")
    [agent] = [a for r in ws["latest_build"]["resources"] for a in r.get("agents") or []]
    assert (agent["status"], agent["lifecycle_state"]) == ("connected", "ready"), agent
    assert {a["slug"]: a["health"] for a in agent["apps"]}.get("code-server") == "healthy"
    dep = client.AppsV1Api(kube).read_namespaced_deployment(f"coder-{OWNER}-remote", REMOTE_NS)
    assert dep.metadata.labels["com.coder.workspace.id"] == ws["id"]
    pvc = client.CoreV1Api(kube).read_namespaced_persistent_volume_claim(f"coder-{OWNER}-remote-home", REMOTE_NS)
    assert pvc.metadata.labels["com.coder.user.username"] == OWNER
    # nothing of it in the namespace Coder's own service account provisions into
    names = {d.metadata.name for d in client.AppsV1Api(kube).list_namespaced_deployment("coder-workspaces").items}
    assert f"coder-{OWNER}-remote" not in names


def test_without_the_kubeconfig_rights_the_build_fails_with_the_denial(remote_template, kube):
    removed = kubectl("-n", REMOTE_NS, "delete", "rolebinding", "coder-provisioner")
    assert removed.returncode == 0, removed.stderr
    try:
        deadline = time.monotonic() + 30  # the authorizer's cache: wait until the denial is in effect
        while can(kube, REMOTE_SA, "create", "persistentvolumeclaims") and time.monotonic() < deadline:
            time.sleep(1)
        res = run_module(
            "coderstack.platform.coder_workspace",
            dict(remote_template, owner=OWNER, name="denied", template=TEMPLATE, parameters={"cpu": 2, "memory": 2}),
        )
    finally:
        restored = kubectl(
            *("-n", REMOTE_NS, "create", "rolebinding", "coder-provisioner", "--role=coder-provisioner"),
            f"--serviceaccount={REMOTE_NS}:coder-provisioner",
        )
        assert restored.returncode == 0, restored.stderr
    assert can(kube, REMOTE_SA, "create", "persistentvolumeclaims")
    assert res.get("failed") is True, res
    msg = res["msg"]
    assert "forbidden" in msg and REMOTE_SA.replace("system:serviceaccount:", "") in msg, msg
