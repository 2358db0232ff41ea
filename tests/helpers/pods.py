"""Pods the workspace tests start on the testbed's real node, and what they reach from there."""

from __future__ import annotations

import time
import uuid

WORKSPACES = "coder-workspaces"


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


def exec_in(kube, pod, script: str) -> str:
    """Run a sh script in the pod's first container (the API server's exec, as kubectl exec does); its output."""
    from kubernetes import client
    from kubernetes.stream import stream

    return stream(
        client.CoreV1Api(kube).connect_get_namespaced_pod_exec,
        pod.metadata.name,
        pod.metadata.namespace,
        container=pod.spec.containers[0].name,
        command=["sh", "-c", script],
        stderr=True,
        stdout=True,
    )


def connects(kube, pod, host: str, port: int) -> bool:
    """A TCP connection from the pod to host:port opens within 4 s (bash's /dev/tcp, as any client would)."""
    out = exec_in(kube, pod, f"timeout 4 bash -c 'exec 3<>/dev/tcp/{host}/{port}' && echo OPEN || echo CLOSED")
    assert "OPEN" in out or "CLOSED" in out, out
    return "OPEN" in out
