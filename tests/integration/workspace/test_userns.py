"""Docker in a workspace without root on the node (coderstack_docker_mode userns, the testbed inventory's mode).

carol's `dev` workspace (site.yml, the session fixture `converged`) runs dockerd in a pod with `hostUsers: false`. Read
from the node: its container's root is an unprivileged uid range there. Inside it, as root with dockerd's
capabilities: the node's disk, where the kubelet's credentials and PostgreSQL's data live, has no device node, none can
be made, no cgroup hierarchy can be mounted to run a program as the node's root, and node-wide kernel settings refuse
it. The positive control is a privileged container of the same image on the
same node (what coderstack_docker_mode privileged runs): there the same probes find the disk's device and read the
kubelet's private key through the node's root.
"""

from __future__ import annotations

import subprocess
import time
import uuid

import pytest
from helpers.parts import STATE
from helpers.pods import node_root_probe, pod_manifest, workspace_image

pytestmark = pytest.mark.slow
WS_NS = "coder-workspaces"
POD = "coder-carol-dev"


def kubectl(*args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    cmd = [str(STATE / "bin/kubectl"), "--kubeconfig", str(STATE / "kubeconfig"), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


def sh(ns: str, pod: str, script: str) -> subprocess.CompletedProcess:
    return kubectl("exec", "-n", ns, pod, "-c", "dev", "--", "sh", "-c", script)


def host_pid(kube, ns: str, pod: str) -> int:
    """The node-side PID of the pod's container, from the node's containerd."""
    from kubernetes import client

    [status] = client.CoreV1Api(kube).read_namespaced_pod(pod, ns).status.container_statuses
    cid = status.container_id.removeprefix("containerd://")
    ctr = [str(STATE / "bin/ctr"), "--address", str(STATE / "node/containerd/containerd.sock"), "-n", "k8s.io"]
    out = subprocess.run(
        [*ctr, "tasks", "ls"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    [pid] = [int(line.split()[1]) for line in out.splitlines() if line.startswith(cid)]
    return pid


@pytest.fixture(scope="module")
def workspace_pod(converged, kube) -> str:
    from kubernetes import client

    pod = client.CoreV1Api(kube).read_namespaced_pod(POD, WS_NS)
    assert pod.spec.host_users is False and pod.status.phase == "Running"
    return POD


@pytest.fixture(scope="module")
def privileged_pod(converged, kube):
    """The control: the workspace image in a privileged container on the same node, in a scratch namespace."""
    from kubernetes import client

    core = client.CoreV1Api(kube)
    ns = f"userns-control-{uuid.uuid4().hex[:6]}"
    core.create_namespace(
        client.V1Namespace(
            metadata=client.V1ObjectMeta(name=ns, labels={"pod-security.kubernetes.io/enforce": "privileged"})
        )
    )
    manifest = pod_manifest("control", ns, workspace_image(kube), "sleep 3600")
    manifest["spec"]["containers"][0]["name"] = "dev"
    manifest["spec"]["containers"][0]["securityContext"] = {"privileged": True}
    core.create_namespaced_pod(ns, manifest)
    try:
        deadline = time.monotonic() + 180
        while core.read_namespaced_pod("control", ns).status.phase != "Running":
            assert time.monotonic() < deadline, core.read_namespaced_pod("control", ns).status
            time.sleep(1)
        yield ns, "control"
    finally:
        core.delete_namespace(ns, grace_period_seconds=0)


def test_root_in_the_workspace_is_an_unprivileged_uid_on_the_node(workspace_pod, kube):
    pid = host_pid(kube, WS_NS, workspace_pod)
    with open(f"/proc/{pid}/uid_map") as f:
        [inside, outside, count] = [int(x) for x in f.read().split()]
    assert inside == 0 and outside >= 65536 and count == 65536, (inside, outside, count)
    with open(f"/proc/{pid}/status") as f:
        uid = next(line.split()[1] for line in f if line.startswith("Uid:"))
    assert int(uid) == outside  # the container's root runs as that uid on the node
    # inside, the same map; the pod's root holds dockerd's capabilities, in its own user namespace only
    assert sh(WS_NS, workspace_pod, "cat /proc/self/uid_map").stdout.split() == ["0", str(outside), "65536"]


def test_the_nodes_credentials_are_out_of_reach_of_workspace_root(workspace_pod, privileged_pod):
    probe = node_root_probe()
    # the workspace: no device node of the node's disk, none can be made, no cgroup hierarchy to mount
    assert sh(WS_NS, workspace_pod, probe).stdout.split() == []
    # control: the same probe as root in a privileged container has the disk's device and reads the kubelet's key
    ns, pod = privileged_pod
    out = sh(ns, pod, probe).stdout.split()
    assert "device" in out and "kubelet-key" in out, out


def test_the_nodes_kernel_settings_are_out_of_reach_of_workspace_root(workspace_pod, privileged_pod):
    """A node-wide kernel setting (vm.drop_caches: write-only, dropping clean caches changes nothing that persists)
    takes CAP_SYS_ADMIN in the node's own user namespace: the workspace's root, with SYS_ADMIN in its namespace only,
    is refused; root in a privileged container may."""
    probe = "echo 1 >/proc/sys/vm/drop_caches 2>/dev/null && echo sysctl; true"
    assert sh(WS_NS, workspace_pod, probe).stdout.split() == []
    # the workspace's root does hold SYS_ADMIN in its own namespace: it mounts a tmpfs there
    own = sh(
        WS_NS, workspace_pod, "mkdir -p /tmp/cs-own && mount -t tmpfs none /tmp/cs-own && umount /tmp/cs-own && echo ok"
    )
    assert own.stdout.split() == ["ok"], own.stderr
    ns, pod = privileged_pod
    assert sh(ns, pod, probe).stdout.split() == ["sysctl"]
