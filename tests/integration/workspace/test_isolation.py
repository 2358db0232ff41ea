"""Workspace isolation (roles/namespaces, the coder and postgres roles), on the testbed's real node with a NetworkPolicy
enforcer (kube-router's firewall controller, testbed/svc_40_node.sh):

- workspaces live in their own namespace; Coder's service account may manage pods there and nothing in the platform
  namespace, so a template cannot mount the platform's Secrets;
- Pod Security: the platform namespace enforces `restricted` (a privileged pod is refused), the workspace namespace
  `privileged` because the testbed inventory opts into docker-in-docker;
- a pod in the workspace namespace reaches Coder and the cluster DNS, but not PostgreSQL and not another workspace;
  PostgreSQL refuses pods of other namespaces too;
- the workspace image is limited to the inventory's registry: Coder refuses a workspace with another image.

Every "cannot" has a positive control beside it (the same path with the allowed destination or source), so a broken
enforcer or a missing listener fails the test instead of passing it.
"""

from __future__ import annotations

import base64
import time
import uuid

import pytest
from helpers.modules import run_module

pytestmark = pytest.mark.slow
PLATFORM = "coder"
WORKSPACES = "coder-workspaces"
CODER_SA = f"system:serviceaccount:{PLATFORM}:coder"
LISTEN_PORT = 18080
# node is in the workspace image (code-server's runtime): a minimal HTTP listener without extra packages
LISTENER = f"node -e \"require('http').createServer((q, r) => r.end('ok')).listen({LISTEN_PORT})\""


def workspace_image(kube) -> str:
    from kubernetes import client

    return client.CoreV1Api(kube).read_namespaced_pod("coder-carol-dev", WORKSPACES).spec.containers[0].image


def pod_manifest(name: str, namespace: str, image: str, command: str, **spec) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app.kubernetes.io/name": "isolation-test"}},
        "spec": {
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 0,
            "automountServiceAccountToken": False,
            "containers": [{"name": "c", "image": image, "command": ["sh", "-c", command]}],
            **spec,
        },
    }


def run_pod(kube, namespace: str, image: str, command: str) -> object:
    """Create a pod and wait until it runs; returns the pod object (deleted by the fixture's cleanup)."""
    from kubernetes import client

    core = client.CoreV1Api(kube)
    name = f"isolation-{uuid.uuid4().hex[:6]}"
    core.create_namespaced_pod(namespace, pod_manifest(name, namespace, image, command))
    deadline = time.monotonic() + 120
    while True:
        pod = core.read_namespaced_pod(name, namespace)
        if pod.status.phase == "Running" and pod.status.pod_ip:
            return pod
        assert pod.status.phase in ("Pending", "Running"), f"pod {namespace}/{name}: {pod.status}"
        assert time.monotonic() < deadline, f"pod {namespace}/{name} did not start: {pod.status}"
        time.sleep(1)


def connects(kube, pod, host: str, port: int) -> bool:
    """A TCP connection from the pod to host:port opens within 4 s (bash's /dev/tcp, as any client would)."""
    from kubernetes import client
    from kubernetes.stream import stream

    script = f"timeout 4 bash -c 'exec 3<>/dev/tcp/{host}/{port}' && echo OPEN || echo CLOSED"
    out = stream(
        client.CoreV1Api(kube).connect_get_namespaced_pod_exec,
        pod.metadata.name,
        pod.metadata.namespace,
        command=["sh", "-c", script],
        stderr=True,
        stdout=True,
    )
    assert "OPEN" in out or "CLOSED" in out, out
    return "OPEN" in out


@pytest.fixture(scope="module")
def pods(converged, kube):
    """A listener and a client in the workspace namespace, and a client in a scratch namespace without policies."""
    from kubernetes import client

    core = client.CoreV1Api(kube)
    image = workspace_image(kube)
    scratch = f"isolation-{uuid.uuid4().hex[:6]}"
    core.create_namespace({"metadata": {"name": scratch}})
    made = []
    try:
        listener = run_pod(kube, WORKSPACES, image, LISTENER)
        made.append(listener)
        ws_client = run_pod(kube, WORKSPACES, image, "sleep 600")
        made.append(ws_client)
        other = run_pod(kube, scratch, image, "sleep 600")
        made.append(other)
        time.sleep(2)  # the listener binds; the enforcer has seen the new pods
        yield {"listener": listener, "ws": ws_client, "other": other}
    finally:
        for p in made:
            core.delete_namespaced_pod(p.metadata.name, p.metadata.namespace, grace_period_seconds=0)
        core.delete_namespace(scratch)


def test_namespaces_carry_their_pod_security_levels(converged, kube):
    from kubernetes import client

    core = client.CoreV1Api(kube)
    labels = {ns: core.read_namespace(ns).metadata.labels for ns in (PLATFORM, WORKSPACES)}
    assert labels[PLATFORM]["pod-security.kubernetes.io/enforce"] == "restricted"
    # the testbed inventory runs docker-in-docker (coder_templates_dind_privileged: true)
    assert labels[WORKSPACES]["pod-security.kubernetes.io/enforce"] == "privileged"


def test_platform_namespace_refuses_a_privileged_pod(converged, kube):
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    core = client.CoreV1Api(kube)
    image = workspace_image(kube)
    privileged = {"securityContext": {"privileged": True}}

    def manifest(ns: str) -> dict:
        m = pod_manifest("psa-probe", ns, image, "true")
        m["spec"]["containers"][0].update(privileged)
        return m

    with pytest.raises(ApiException) as refused:
        core.create_namespaced_pod(PLATFORM, manifest(PLATFORM), dry_run="All")
    assert refused.value.status == 403 and "violates PodSecurity" in refused.value.body
    # control: the same pod is admitted where docker-in-docker workspaces run
    core.create_namespaced_pod(WORKSPACES, manifest(WORKSPACES), dry_run="All")


@pytest.mark.parametrize(
    "namespace,verb,resource,allowed",
    [
        (WORKSPACES, "create", "pods", True),
        (WORKSPACES, "create", "persistentvolumeclaims", True),
        (PLATFORM, "create", "pods", False),
        (PLATFORM, "get", "secrets", False),
        (PLATFORM, "list", "secrets", False),
    ],
)
def test_coder_service_account_manages_workspaces_only(converged, kube, namespace, verb, resource, allowed):
    """What Coder's provisioner (and so any template) can do with the service account's token."""
    from kubernetes import client

    review = client.AuthorizationV1Api(kube).create_subject_access_review(
        {
            "spec": {
                "user": CODER_SA,
                "groups": ["system:serviceaccounts", f"system:serviceaccounts:{PLATFORM}"],
                "resourceAttributes": {"namespace": namespace, "verb": verb, "resource": resource},
            }
        }
    )
    assert review.status.allowed is allowed, (namespace, verb, resource, review.status)


def test_platform_secrets_are_not_in_the_workspace_namespace(converged, kube):
    from kubernetes import client

    core = client.CoreV1Api(kube)
    platform = {s.metadata.name for s in core.list_namespaced_secret(PLATFORM).items}
    assert {"coder-db-url", "coder-admin", "coder-admin-token"} <= platform
    assert not platform & {s.metadata.name for s in core.list_namespaced_secret(WORKSPACES).items}


def test_workspace_reaches_coder_but_not_postgresql(kube, pods):
    ws = pods["ws"]
    assert connects(kube, ws, f"coder.{PLATFORM}.svc.cluster.local", 80)
    assert not connects(kube, ws, f"coder-db.{PLATFORM}.svc.cluster.local", 5432)


def test_postgresql_refuses_other_namespaces(kube, pods):
    from kubernetes import client

    other = pods["other"]
    db_ip = client.CoreV1Api(kube).read_namespaced_pod("coder-db-0", PLATFORM).status.pod_ip
    # control: the same pod reaches Coder (no policy of its own limits it)
    assert connects(kube, other, f"coder.{PLATFORM}.svc.cluster.local", 80)
    assert not connects(kube, other, db_ip, 5432)


def test_workspaces_cannot_reach_each_other(kube, pods):
    import socket

    listener = pods["listener"]
    # controls: the listener answers on its pod address, inside its pod and from the node (the enforcer lets the
    # node in, as kubelet probes need): only other pods are kept out
    assert connects(kube, listener, listener.status.pod_ip, LISTEN_PORT)
    socket.create_connection((listener.status.pod_ip, LISTEN_PORT), timeout=4).close()
    assert not connects(kube, pods["ws"], listener.status.pod_ip, LISTEN_PORT)
    assert not connects(kube, pods["other"], listener.status.pod_ip, LISTEN_PORT)


def test_workspace_image_outside_the_registry_is_refused(converged, testbed, kube):
    from kubernetes import client

    token = client.CoreV1Api(kube).read_namespaced_secret("coder-admin-token", PLATFORM).data["token"]
    args = {
        "coder_url": testbed.coder_url,
        "coder_token": base64.b64decode(token).decode(),
        "ca_path": str(testbed.coder_ca),
        "owner": "carol",
        "name": f"img{uuid.uuid4().hex[:6]}",
        "template": "kubernetes-dind",
        "parameters": {"cpu": 2, "memory": 2, "image": "docker.io/library/ubuntu:24.04"},
    }
    res = run_module("coderstack.platform.coder_workspace", args)
    try:
        assert res.get("failed") is True
        assert "this deployment allows only images from its own registry" in res["msg"], res["msg"]
    finally:
        run_module("coderstack.platform.coder_workspace", dict(args, state="absent"))
