"""The other two docker modes end to end, and the change between modes, through an install of their own.

inventories/testbed runs in `userns` (test_workspace_e2e.py, test_userns.py). Here the same inventory converges once
more beside it (its own namespaces, DNS name and CA file, as the shipped inventories' tests do), first with
`coderstack_docker_mode: privileged`: carol's `dev` workspace runs in the docker workspaces' own namespace, privileged,
dockerd runs a locally made image, and the same probe test_userns.py runs finds the node's disk and reads the kubelet's
key there (root on the node: what `userns` takes away). Changing the mode while her workspace keeps its volumes in
that namespace is refused before anything changes, naming the variable. Once her workspace is deleted, `none`
converges: the privileged namespace is gone, and her new workspace runs at Pod Security baseline, without dockerd.
"""

from __future__ import annotations

import base64
import functools
import subprocess
import time

import pytest
from helpers.ansible_run import run_playbook
from helpers.modules import run_module
from helpers.parts import STATE
from helpers.pods import HELLO, docker_runs_a_local_image, in_workspace, kubectl, node_root_probe

pytestmark = pytest.mark.slow
NS = "coder-modes"
WS_NS = f"{NS}-ws"
DOCKER_NS = f"{WS_NS}-docker"  # coderstack_docker_namespace's default: <workspace namespace>-docker
HOST = "modes.testbed.local"
POD = "coder-carol-dev"


def in_pod(ns: str, script: str, stdin: bytes | None = None, timeout: int = 120) -> str:
    """Run a shell script in carol's workspace container in namespace ``ns``; its stdout."""
    return in_workspace(ns, POD, script, stdin=stdin, timeout=timeout)


def cleanup(ca_path) -> None:
    helm = [str(STATE / "bin/helm"), "--kubeconfig", str(STATE / "kubeconfig")]
    subprocess.run([*helm, "uninstall", "coder", "-n", NS, "--wait"], capture_output=True, check=False, timeout=300)
    kubectl("delete", "namespace", NS, WS_NS, DOCKER_NS, "--ignore-not-found", "--wait=true", timeout=330)
    kubectl("delete", "validatingadmissionpolicybinding,validatingadmissionpolicy", "--ignore-not-found",
            f"coderstack-workspace-pods.{WS_NS}")  # fmt: skip
    ca_path.unlink(missing_ok=True)


class Install:
    """inventories/testbed converged into NS/WS_NS at HOST, in a docker mode the test chooses."""

    def __init__(self, tmp):
        self.ca = tmp / "coder-ca.crt"
        self.base = {
            "coderstack_namespace": NS,
            "coderstack_workspace_namespace": WS_NS,
            "coderstack_domain": HOST,
            "coderstack_ca_path": str(self.ca),
            "postgres_backup_dir": str(tmp / "backups"),
        }

    def converge(self, mode: str):
        return run_playbook("site.yml", extra_vars={**self.base, "coderstack_docker_mode": mode}, timeout=1800)

    def module_args(self, kube) -> dict:
        from kubernetes import client

        token = client.CoreV1Api(kube).read_namespaced_secret("coder-admin-token", NS).data["token"]
        return {
            "coder_url": f"https://{HOST}",
            "coder_token": base64.b64decode(token).decode(),
            "ca_path": str(self.ca),
            "owner": "carol",
            "name": "dev",
        }

    def workspace(self, kube) -> dict:
        import requests

        args = self.module_args(kube)
        resp = requests.get(
            f"{args['coder_url']}/api/v2/users/carol/workspace/dev",
            headers={"Coder-Session-Token": args["coder_token"]},
            verify=args["ca_path"],
            timeout=30,
        )
        resp.raise_for_status()
        return resp.json()


@pytest.fixture(scope="module")
def install(testbed, tmp_path_factory):
    inst = Install(tmp_path_factory.mktemp("modes"))
    cleanup(inst.ca)
    try:
        yield inst
    finally:
        cleanup(inst.ca)


@pytest.fixture(scope="module")
def privileged(install):
    res = install.converge("privileged")
    assert res.rc == 0, f"site.yml with coderstack_docker_mode privileged did not converge:\n{res.output[-5000:]}"
    return install


def ready(ws: dict) -> bool:
    build = ws["latest_build"]
    agents = [a for r in build["resources"] for a in r.get("agents") or []]
    apps = {a["slug"]: a["health"] for agent in agents for a in agent["apps"]}
    return (build["status"], [a["lifecycle_state"] for a in agents], apps.get("code-server")) == (
        "running",
        ["ready"],
        "healthy",
    )


def pod(kube, ns: str):
    from kubernetes import client

    return client.CoreV1Api(kube).read_namespaced_pod(POD, ns)


def pod_security(kube, ns: str) -> str:
    from kubernetes import client

    return client.CoreV1Api(kube).read_namespace(ns).metadata.labels["pod-security.kubernetes.io/enforce"]


def test_privileged_docker_workspaces_run_in_a_privileged_namespace_of_their_own(privileged, kube):
    p = pod(kube, DOCKER_NS)
    [c] = p.spec.containers
    assert c.security_context.privileged is True
    assert p.spec.host_users is not False  # the node's own user namespace
    assert (pod_security(kube, DOCKER_NS), pod_security(kube, WS_NS)) == ("privileged", "baseline")
    assert ready(privileged.workspace(kube))


def test_privileged_workspace_runs_docker_and_its_root_is_root_on_the_node(privileged, kube, tmp_path):
    run = functools.partial(in_pod, DOCKER_NS)
    assert docker_runs_a_local_image(run, tmp_path) == HELLO
    # the positive control of test_userns.py, through a workspace: the node's disk and the kubelet's key are reached
    out = run(node_root_probe()).split()
    assert "device" in out and "kubelet-key" in out, out
    assert run("cat /proc/self/uid_map").split() == ["0", "0", "4294967295"]


def test_a_mode_change_that_would_strand_workspace_volumes_is_refused_before_anything_changes(privileged, kube):
    before = pod(kube, DOCKER_NS).metadata.uid
    res = privileged.converge("userns")
    assert res.rc != 0
    out = res.output
    assert "coderstack_docker_mode is userns" in out, out[-3000:]
    assert f"are still in {DOCKER_NS} ({POD}-docker, {POD}-home, {POD}-linuxbrew)" in " ".join(out.split())
    # nothing changed: the namespaces keep their levels, the workspace its pod
    assert (pod_security(kube, DOCKER_NS), pod_security(kube, WS_NS)) == ("privileged", "baseline")
    assert pod(kube, DOCKER_NS).metadata.uid == before


def test_none_mode_after_the_docker_workspace_is_deleted(privileged, kube):
    from kubernetes import client

    gone = run_module("coderstack.platform.coder_workspace", dict(privileged.module_args(kube), state="absent"))
    assert gone.get("failed") is not True and gone["changed"] is True, gone.get("msg")
    deadline = time.monotonic() + 180  # the delete build removed the volumes; Kubernetes lets them go after the pod
    while client.CoreV1Api(kube).list_namespaced_persistent_volume_claim(DOCKER_NS).items:
        assert time.monotonic() < deadline, "the deleted workspace's volumes are still there"
        time.sleep(1)
    res = privileged.converge("none")
    assert res.rc == 0, f"site.yml with coderstack_docker_mode none did not converge:\n{res.output[-5000:]}"
    # the privileged namespace is gone with the mode that needed it
    names = {n.metadata.name for n in client.CoreV1Api(kube).list_namespace().items}
    assert DOCKER_NS not in names and WS_NS in names
    assert pod_security(kube, WS_NS) == "baseline"
    # carol's workspace (site.yml made it again): agent ready and code-server healthy, nothing beyond baseline
    assert ready(privileged.workspace(kube))
    p = pod(kube, WS_NS)
    [c] = p.spec.containers
    sc = c.security_context
    assert not (sc and sc.privileged)
    assert not (sc and sc.capabilities and sc.capabilities.add), sc
    assert p.spec.host_users is not False
    # no dockerd: the docker CLI finds no daemon (positive control: the privileged workspace ran one, above)
    run = functools.partial(in_pod, WS_NS)
    assert run("pgrep -x dockerd >/dev/null && echo dockerd || echo none").strip() == "none"
    assert "Cannot connect to the Docker daemon" in run("docker info 2>&1; true")
    again = privileged.converge("none")
    assert again.rc == 0 and again.changed == 0, again.output[-5000:]


def test_a_namespace_of_that_name_not_made_by_coderstack_is_left_alone(privileged, kube):
    """Only the namespace coderstack made for privileged docker workspaces (its namespace-role label) is deleted when
    the mode no longer uses it; one of the same name made by someone else stays."""
    from kubernetes import client

    core = client.CoreV1Api(kube)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=DOCKER_NS)))
    try:
        res = run_playbook(
            "playbooks/namespaces.yml", extra_vars={**privileged.base, "coderstack_docker_mode": "none"}, timeout=600
        )
        assert res.rc == 0, res.output[-4000:]
        assert core.read_namespace(DOCKER_NS).status.phase == "Active"
    finally:
        core.delete_namespace(DOCKER_NS)
        deadline = time.monotonic() + 120
        while DOCKER_NS in {n.metadata.name for n in core.list_namespace().items}:
            assert time.monotonic() < deadline
            time.sleep(1)
