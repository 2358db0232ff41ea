"""Docker in a workspace without root on the node (coderstack_docker_mode userns, the testbed inventory's mode).

carol's `dev` workspace (site.yml, the session fixture `converged`) runs dockerd in a pod with `hostUsers: false`. Read
from the node: its container's root is an unprivileged uid range there. Inside it, as root with dockerd's
capabilities: the node's disk, where the kubelet's credentials and PostgreSQL's data live, has no device node, none can
be made, and a file the node's root owns in the workspace's own volume cannot be written. The positive control is a
privileged container of the same image on the same node (what coderstack_docker_mode privileged runs): there the same
probes reach the node's disk and the kubelet's key.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid

import pytest
from helpers.parts import STATE
from helpers.pods import pod_manifest, workspace_image

pytestmark = pytest.mark.slow
WS_NS = "coder-workspaces"
POD = "coder-carol-dev"
KUBELET_KEY = STATE / "pki/kubelet.key"


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


def root_device() -> tuple[str, int, int]:
    """The node's root file system's block device (kubelet credentials, PostgreSQL's volume) and its numbers."""
    st = os.stat(str(STATE))
    major, minor = os.major(st.st_dev), os.minor(st.st_dev)
    name = os.path.basename(os.path.realpath(f"/sys/dev/block/{major}:{minor}"))
    return name, major, minor


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


def test_the_nodes_disk_is_out_of_reach_of_workspace_root(workspace_pod, privileged_pod):
    name, major, minor = root_device()
    probe = (
        f"test -b /dev/{name} && echo device; mknod /tmp/disk b {major} {minor} 2>/dev/null && echo mknod;"
        f" mkdir -p /mnt/node && mount -o ro /dev/{name} /mnt/node 2>/dev/null"
        f" && test -r /mnt/node{KUBELET_KEY} && echo kubelet-key; true"
    )
    # the workspace: no device node of the node's disk, none can be made, nothing mounted from it
    assert sh(WS_NS, workspace_pod, probe).stdout.split() == []
    # control: the same probe as root in a privileged container reaches the kubelet's credentials
    ns, pod = privileged_pod
    out = sh(ns, pod, probe).stdout.split()
    assert "device" in out and "kubelet-key" in out, out


def test_workspace_root_cannot_write_what_the_nodes_root_owns(workspace_pod, privileged_pod, kube):
    """A directory of the node's root, placed in the workspace's own docker volume: root in the pod cannot write it."""
    from kubernetes import client

    pvc = client.CoreV1Api(kube).read_namespaced_persistent_volume_claim(f"{POD}-docker", WS_NS)
    pv = client.CoreV1Api(kube).read_persistent_volume(pvc.spec.volume_name)
    host_dir = pv.spec.host_path.path if pv.spec.host_path else pv.spec.local.path
    owned = os.path.join(host_dir, f"node-root-{uuid.uuid4().hex[:6]}")
    os.mkdir(owned, 0o755)  # root:root on the node
    try:
        name = os.path.basename(owned)
        denied = sh(WS_NS, workspace_pod, f"touch /var/lib/docker/{name}/x")
        assert denied.returncode != 0 and "denied" in denied.stderr.lower(), denied
        # control: the pod's root writes its own files in the same volume
        mine = sh(WS_NS, workspace_pod, f"touch /var/lib/docker/{name}-mine && rm /var/lib/docker/{name}-mine")
        assert mine.returncode == 0, mine.stderr
    finally:
        os.rmdir(owned)
