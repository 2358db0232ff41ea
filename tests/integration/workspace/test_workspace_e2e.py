"""The moment coderstack exists for, end to end on the testbed, through the public path (ingress, TLS):
a developer's workspace is built from the template, its pod runs on the real node, the agent connects, code-server
is healthy, and inside it fish is the shell, dockerd answers and runs a container, and the home survives a stop and
a start. The second template (kubernetes-ollama) runs as uid 1000 with its agent connected and code-server healthy,
takes Ollama from the testbed's mirror, and `ollama run` answers there with a model the test makes.

site.yml (the session fixture `converged`) creates carol's `dev` workspace from inventories/testbed
(group_vars/all/workspaces.yml); the tests read it back, act in it, and drive it with the coder_workspace module.
"""

from __future__ import annotations

import base64
import functools
import time
import uuid

import pytest
from helpers.modules import run_module
from helpers.parts import REPO, STATE
from helpers.pods import HELLO, docker_runs_a_local_image, in_workspace

pytestmark = pytest.mark.slow
NS = "coder"  # the platform: Secrets
WS_NS = "coder-workspaces"  # the workspaces (roles/namespaces)
OWNER = "carol"
NAME = "dev"
POD = f"coder-{OWNER}-{NAME}"
NODE = "testbed-real-1"


def in_pod(pod: str, script: str, stdin: bytes | None = None, timeout: int = 120) -> str:
    """Run a shell script in the workspace container of ``pod`` (namespace WS_NS); its stdout."""
    return in_workspace(WS_NS, pod, script, stdin=stdin, timeout=timeout)


def admin_args(testbed, kube) -> dict:
    from kubernetes import client

    token = client.CoreV1Api(kube).read_namespaced_secret("coder-admin-token", NS).data["token"]
    return {
        "coder_url": testbed.coder_url,
        "coder_token": base64.b64decode(token).decode(),
        "ca_path": str(testbed.coder_ca),
    }


def workspace(testbed, kube, owner=OWNER, name=NAME) -> dict:
    return testbed.coder(kube, f"/api/v2/users/{owner}/workspace/{name}")


def agents(ws: dict) -> list[dict]:
    return [a for r in ws["latest_build"]["resources"] for a in r.get("agents") or []]


def assert_ready(ws: dict) -> None:
    """The developer's view: build succeeded, the agent connected and ready, code-server healthy."""
    build = ws["latest_build"]
    assert (build["transition"], build["status"], build["job"]["status"]) == ("start", "running", "succeeded")
    [agent] = agents(ws)
    assert (agent["status"], agent["lifecycle_state"]) == ("connected", "ready"), agent
    apps = {a["slug"]: a["health"] for a in agent["apps"]}
    assert apps.get("code-server") == "healthy", apps


@pytest.fixture(scope="module")
def dind(converged, testbed, kube) -> dict:
    ws = workspace(testbed, kube)
    assert ws["template_name"] == "kubernetes-dind"
    return ws


def test_dind_build_agent_and_code_server(dind):
    assert_ready(dind)
    [agent] = agents(dind)
    assert agent["version"].lstrip("v").startswith(dind_version())


def dind_version() -> str:
    text = (REPO / "roles/coder/defaults/main.yml").read_text()
    return text.split('coder_chart_version: "', 1)[1].split('"', 1)[0]


def test_dind_volumes_bound_and_pod_in_a_user_namespace_on_the_real_node(dind, kube):
    from kubernetes import client

    core = client.CoreV1Api(kube)
    for vol in ("home", "docker", "linuxbrew"):
        pvc = core.read_namespaced_persistent_volume_claim(f"{POD}-{vol}", WS_NS)
        assert pvc.status.phase == "Bound", (vol, pvc.status.phase)
    pod = core.read_namespaced_pod(POD, WS_NS)
    assert pod.spec.node_name == NODE
    assert pod.status.phase == "Running"
    [c] = pod.spec.containers
    # coderstack_docker_mode userns (the testbed inventory): not privileged, in a user namespace, its writable layer
    # bounded (tests/integration/workspace/test_userns.py proves what that means on the node)
    assert pod.spec.host_users is False
    assert c.security_context.privileged is False
    assert c.resources.limits["ephemeral-storage"] == "10Gi"
    [cs] = pod.status.container_statuses
    assert cs.ready and cs.container_id.startswith("containerd://")
    assert pod.metadata.labels["com.coder.user.username"] == OWNER
    # the CA the ingress role exported is mounted: the agent reached https://coder.testbed.local with it
    mounts = {m.mount_path: m.name for m in c.volume_mounts}
    assert mounts.get("/etc/coderstack/ca") == "coderstack-ca"


def test_dind_agent_used_the_access_url_with_the_exported_ca(dind):
    """The agent process was started by the init script from https://coder.testbed.local (not an in-cluster
    http URL), trusting the CA through the bundle the template builds."""
    env = in_pod(POD, "cat /proc/$(pgrep -f 'coder agent' | head -n1)/environ | tr '\\0' '\\n'")
    assert "CODER_AGENT_URL=https://coder.testbed.local/" in env
    assert "SSL_CERT_FILE=/tmp/coderstack-ca-bundle.crt" in env
    bundle = in_pod(POD, "cat /tmp/coderstack-ca-bundle.crt")
    ca = (STATE / "coder-ca.crt").read_text().strip()
    assert ca in bundle


def test_fish_is_the_shell_and_docker_runs_a_local_image(dind, tmp_path):
    assert in_pod(POD, "getent passwd root").strip().endswith(":/usr/bin/fish")
    assert in_pod(POD, "fish -c 'echo $FISH_VERSION'").strip()
    # dockerd was started by the image's bootstrap (docker-in-docker, in the pod's user namespace); a locally provided
    # image (helpers.pods.hello_rootfs) is imported into it and run there
    assert docker_runs_a_local_image(functools.partial(in_pod, POD), tmp_path) == HELLO


def test_home_survives_stop_and_start(dind, testbed, kube):
    marker = uuid.uuid4().hex
    in_pod(POD, f"echo {marker} > /root/coderstack-persist.txt")
    args = dict(admin_args(testbed, kube), owner=OWNER, name=NAME)
    stopped = run_module("coderstack.platform.coder_workspace", dict(args, state="stopped"))
    assert stopped.get("failed") is not True, stopped.get("msg")
    assert stopped["changed"] is True and stopped["build"] == "stop"
    assert workspace(testbed, kube)["latest_build"]["status"] == "stopped"
    from kubernetes import client

    core = client.CoreV1Api(kube)
    deadline = time.monotonic() + 120
    while any(p.metadata.name == POD for p in core.list_namespaced_pod(WS_NS).items):
        assert time.monotonic() < deadline, "the workspace pod is still there after the stop build"
        time.sleep(1)
    assert core.read_namespaced_persistent_volume_claim(f"{POD}-home", WS_NS).status.phase == "Bound"
    started = run_module("coderstack.platform.coder_workspace", dict(args, state="started"))
    assert started.get("failed") is not True, started.get("msg")
    assert started["changed"] is True and started["build"] == "start"
    assert_ready(workspace(testbed, kube))
    assert in_pod(POD, "cat /root/coderstack-persist.txt").strip() == marker
    again = run_module("coderstack.platform.coder_workspace", dict(args, state="started"))
    assert again["changed"] is False and again["api_calls"] == {"GET": 1}


def agent_metadata(testbed, kube, agent_id: str, keys: set[str], timeout: float = 90) -> dict[str, str]:
    """The agent's metadata as Coder's API streams it (GET .../watch-metadata, server-sent events), once every key in
    KEYS has a value collected without error: {key: value}."""
    import json

    import requests
    from kubernetes import client

    token = base64.b64decode(client.CoreV1Api(kube).read_namespaced_secret("coder-admin-token", NS).data["token"])
    url = f"{testbed.coder_url}/api/v2/workspaceagents/{agent_id}/watch-metadata"
    deadline = time.monotonic() + timeout
    seen: dict[str, dict] = {}
    with requests.get(
        url, headers={"Coder-Session-Token": token.decode()}, stream=True, timeout=30, verify=str(testbed.coder_ca)
    ) as resp:
        resp.raise_for_status()
        for line in resp.iter_lines(decode_unicode=True):
            if line and line.startswith("data: ") and line[6:].startswith("["):
                for m in json.loads(line[6:]):
                    seen[m["description"]["key"]] = m["result"]
                done = {k: r["value"] for k, r in seen.items() if r["value"] and not r["error"]}
                if keys <= done.keys():
                    return done
            assert time.monotonic() < deadline, f"agent metadata after {timeout} s: {seen}"
    raise AssertionError(f"the metadata stream ended: {seen}")


def test_ollama_workspace_runs_as_uid_1000_and_ollama_answers(converged, testbed, kube, tmp_path):
    """kubernetes-ollama on the testbed: uid 1000, Ollama from the testbed's mirror (the air-gapped path: the archive
    checked against its sha256, unpacked into the home volume), a model made here answers `ollama run` in the
    workspace, and the agent's metadata blocks report values in Coder's API."""
    from helpers.gguf_model import write_tiny_llama
    from kubernetes import client

    args = dict(admin_args(testbed, kube), owner=OWNER, name="llm")
    res = run_module(
        "coderstack.platform.coder_workspace",
        dict(args, template="kubernetes-ollama", parameters={"cpu": 2, "memory": 2, "ollama_model": ""}),
    )
    try:
        assert res.get("failed") is not True, res.get("msg")
        assert res["changed"] is True and res["build"] == "create"
        ws = workspace(testbed, kube, name="llm")
        assert_ready(ws)
        apps = client.AppsV1Api(kube)
        dep = apps.read_namespaced_deployment(f"coder-{OWNER}-llm", WS_NS)
        assert dep.spec.template.spec.security_context.run_as_user == 1000
        [pod] = (
            client.CoreV1Api(kube)
            .list_namespaced_pod(WS_NS, label_selector=f"app.kubernetes.io/instance=coder-{OWNER}-llm")
            .items
        )
        pod = pod.metadata.name
        assert client.CoreV1Api(kube).read_namespaced_pod(pod, WS_NS).spec.node_name == NODE
        assert in_pod(pod, "id -u").strip() == "1000"
        assert in_pod(pod, "echo $HOME").strip() == "/home/coder"

        # Ollama came from the mirror, as the archive whose sha256 the inventory names
        want = (STATE / "mirror/ollama-linux-amd64.tgz.sha256").read_text().strip()
        assert in_pod(pod, "cat ~/.local/ollama/.sha256").strip() == want
        env = "export PATH=$HOME/.local/bin:$PATH OLLAMA_MODELS=$HOME/.ollama/models; "
        version = in_pod(pod, env + "ollama --version")
        pinned = (REPO / "testbed/versions.env").read_text().split("OLLAMA_VERSION=v", 1)[1].split()[0]
        assert f"version is {pinned}" in version, version
        # a model made here (random weights, 0.5 MB): `ollama run` answers with it inside the workspace
        model = write_tiny_llama(tmp_path / "tiny.gguf")
        in_pod(pod, "cat > ~/tiny.gguf", stdin=model.read_bytes())
        in_pod(pod, "printf 'FROM ./tiny.gguf\\nPARAMETER temperature 0\\nPARAMETER num_predict 12\\n' > ~/Modelfile")
        created = in_pod(pod, env + "cd ~ && ollama create tiny -f Modelfile 2>&1", timeout=180)
        assert "success" in created, created
        t0 = time.monotonic()
        answer = in_pod(pod, env + "ollama run tiny 'What is coderstack?' 2>/dev/null", timeout=180)
        took = time.monotonic() - t0
        words = answer.split()
        assert len(words) >= 3 and all(w.isalpha() for w in words), answer
        print(f"ollama run answered {answer.strip()!r} in {took:.1f}s")

        # the metadata blocks of the template report values (coder stat and the load script, run by the agent)
        [agent] = agents(ws)
        meta = agent_metadata(
            testbed,
            kube,
            agent["id"],
            {"0_cpu_usage", "1_ram_usage", "3_home_disk", "4_cpu_usage_host", "5_mem_usage_host", "6_load_host"},
        )
        assert "/" in meta["1_ram_usage"] and "/" in meta["3_home_disk"], meta
        assert float(meta["6_load_host"]) >= 0, meta
    finally:
        gone = run_module("coderstack.platform.coder_workspace", dict(args, state="absent"))
    assert gone.get("failed") is not True, gone.get("msg")
    assert gone["build"] == "delete"
    with pytest.raises(Exception, match="404"):
        workspace(testbed, kube, name="llm")
    pvcs = client.CoreV1Api(kube).list_namespaced_persistent_volume_claim(WS_NS).items
    assert f"coder-{OWNER}-llm-home" not in {p.metadata.name for p in pvcs}


def test_workspace_module_check_mode_and_diff(dind, testbed, kube):
    """A parameter change is reported with its before/after, and check mode builds nothing."""
    before = workspace(testbed, kube)["latest_build"]["build_number"]
    args = dict(admin_args(testbed, kube), owner=OWNER, name=NAME, parameters={"cpu": 2, "memory": 4})
    res = run_module("coderstack.platform.coder_workspace", dict(args, state="started"), check=True, diff=True)
    assert res["changed"] is True and res["build"] == "start"
    assert res["diff"]["before"]["parameters"] == {"memory": "2"}
    assert res["diff"]["after"]["parameters"] == {"cpu": "2", "memory": "4"}
    assert workspace(testbed, kube)["latest_build"]["build_number"] == before
