"""Pods the workspace tests start on the testbed's real node, and what they reach from there."""

from __future__ import annotations

import os
import subprocess
import time
import uuid

from helpers.parts import STATE

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


HELLO = "hello from a container in a coderstack workspace"


def hello_rootfs(tmp_path) -> bytes:
    """The root file system of a one-program image (a static program built here), for `docker import`: an image no
    registry has to serve; `docker run ... /hello` prints HELLO."""
    import subprocess
    import tarfile

    src = tmp_path / "hello.c"
    src.write_text('#include <stdio.h>\nint main(void){puts("' + HELLO + '");}\n')
    subprocess.run(["gcc", "-static", "-Os", "-o", str(tmp_path / "hello"), str(src)], check=True)
    rootfs = tmp_path / "rootfs.tar"
    with tarfile.open(rootfs, "w") as tar:
        tar.add(tmp_path / "hello", arcname="hello")
    return rootfs.read_bytes()


def docker_runs_a_local_image(run, tmp_path) -> str:
    """In a workspace whose bootstrap started dockerd: wait until it answers, import the hello image and run it.
    ``run(script, stdin=None, timeout=120)`` runs a shell script in the workspace container and returns its stdout
    (failing the test when the script fails). Returns the container's output."""
    deadline = time.monotonic() + 90
    while "up" not in run("docker info --format '{{.ServerVersion}}' >/dev/null 2>&1 && echo up || true"):
        assert time.monotonic() < deadline, "docker info never answered: " + run("docker info 2>&1 | tail -n 5; true")
        time.sleep(2)
    run("docker import - coderstack-test/hello:local >/dev/null", stdin=hello_rootfs(tmp_path))
    return run("docker run --rm coderstack-test/hello:local /hello", timeout=180).strip()


# Root on the node from a container, the classic way on cgroup v1 (this host): mount a cgroup hierarchy, point its
# release_agent at a script in the container's own layer (its path on the node from the overlay's upperdir) and let
# the kernel run it, as the node's root, when the cgroup empties. The script only checks that the kubelet's private key
# is readable (it is never printed); the hierarchy's release_agent is put back and the cgroup removed.
_ESCAPE = """
d=/tmp/cs-cgroup; mkdir -p $d; mount -t cgroup -o pids cgroup $d 2>/dev/null || exit 0
up=$(sed -n 's/.*upperdir=\\([^,]*\\).*/\\1/p' /proc/self/mountinfo | head -n1)
old=$(cat $d/release_agent)
printf '#!/bin/sh\\ngrep -q "PRIVATE KEY" %s && touch %s/kubelet-key-read\\n' "{key}" "$up" >/cs-agent
chmod +x /cs-agent; mkdir -p $d/cs-escape; echo 1 >$d/cs-escape/notify_on_release; echo "$up/cs-agent" >$d/release_agent
sh -c "echo \\$\\$ >$d/cs-escape/cgroup.procs"; sleep 1
test -e /kubelet-key-read && echo kubelet-key
echo "$old" >$d/release_agent; rmdir $d/cs-escape; umount $d; rm -f /cs-agent /kubelet-key-read
"""


def root_device() -> tuple[str, int, int]:
    """The node's root file system's block device (kubelet credentials, PostgreSQL's volume) and its numbers."""
    st = os.stat(str(STATE))
    major, minor = os.major(st.st_dev), os.minor(st.st_dev)
    name = os.path.basename(os.path.realpath(f"/sys/dev/block/{major}:{minor}"))
    return name, major, minor


def node_root_probe() -> str:
    """A shell script that prints what root in a container can reach of its node: `device` (the node's disk has a
    device node there), `mknod` (one can be made) and `kubelet-key` (the kubelet's private key read through the cgroup
    v1 release_agent, i.e. as the node's root). Nothing is printed where none of it holds."""
    name, major, minor = root_device()
    return (
        f"test -b /dev/{name} && echo device; mknod /tmp/disk b {major} {minor} 2>/dev/null && echo mknod;"
        + _ESCAPE.format(key=STATE / "pki/kubelet.key")
    )


def kubectl(*args: str, stdin: bytes | None = None, timeout: int = 120) -> subprocess.CompletedProcess:
    """The testbed's kubectl (bytes in and out; never raises on a non-zero exit)."""
    cmd = [str(STATE / "bin/kubectl"), "--kubeconfig", str(STATE / "kubeconfig"), *args]
    return subprocess.run(cmd, input=stdin, capture_output=True, timeout=timeout, check=False)


def in_workspace(ns: str, pod: str, script: str, stdin: bytes | None = None, timeout: int = 120) -> str:
    """Run a shell script in a workspace pod's `dev` container (kubectl exec, as the container's user); its stdout.
    A non-zero exit fails the test with the script and its stderr."""
    args = ["exec", "-n", ns, *(["-i"] if stdin is not None else []), pod, "-c", "dev", "--", "sh", "-c", script]
    proc = kubectl(*args, stdin=stdin, timeout=timeout)
    assert proc.returncode == 0, f"`{script}` in {ns}/{pod} failed ({proc.returncode}): {proc.stderr.decode()[-2000:]}"
    return proc.stdout.decode()
