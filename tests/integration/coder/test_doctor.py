"""playbooks/doctor.yml on the testbed's platform: it passes on the healthy platform (every check's verdict is OK,
also under --check, changing nothing), and finds what is deliberately broken, naming it: Coder scaled to 0, a
certificate the CA in use does not verify, a workspace whose agent is disconnected. Each break is undone in the test.
"""

from __future__ import annotations

import time

HEALTHY = [
    "OK | Coder health: access URL",
    "OK | Coder health: database",
    "OK | Coder health: DERP relay",
    "OK | Coder health: websockets",
    "OK | Coder health: provisioners",
    "OK | Coder's Deployment",
    "OK | agent URL probe | workspaces reach the agent URL",
    "OK | TLS certificate (coder-tls) | expires in",
    "OK | database volume",
    "OK | pods in coder |",
]


def _text(res) -> str:
    """The output with whitespace collapsed and YAML's doubled quotes undone (the callback prints the verdicts as
    YAML strings: Coder's -> 'Coder''s')."""
    return " ".join(res.output.split()).replace("''", "'")


def test_the_healthy_platform_passes_every_check(converged, playbook):
    # tests before this one restart PostgreSQL and Coder; workspace agents then reconnect within a minute or two, and
    # until they have, the doctor rightly reports them: it is asked again until the platform has settled
    deadline = time.monotonic() + 180
    while True:
        res = playbook("playbooks/doctor.yml", args=["--check"])
        if res.rc == 0 or time.monotonic() > deadline:
            break
        time.sleep(5)
    assert res.rc == 0 and res.changed == 0, res.output[-4000:]
    text = _text(res)
    missing = [line for line in HEALTHY if line not in text]
    assert not missing, (missing, text[-4000:])
    assert "ERROR |" not in text


def test_coder_scaled_to_zero_is_found_and_named(converged, kube, playbook):
    from kubernetes import client

    apps = client.AppsV1Api(kube)
    apps.patch_namespaced_deployment_scale("coder", "coder", {"spec": {"replicas": 0}})
    try:
        res = playbook("playbooks/doctor.yml")
        assert res.rc != 0
        text = _text(res)
        assert "ERROR | Coder's Deployment | Deployment coder/coder is scaled to 0" in text, text[-4000:]
        assert "ERROR | Coder answers | https://coder.testbed.local" in text
        assert "The doctor found" in text and "Coder's Deployment" in text
    finally:
        res = playbook("playbooks/coder.yml")  # the role scales it back to coder_replicas and waits
        assert res.rc == 0, res.output[-3000:]
    assert apps.read_namespaced_deployment("coder", "coder").spec.replicas == 1


def test_a_certificate_the_ca_does_not_verify_is_found(converged, playbook, tmp_path):
    from helpers.pki import certificate, pem

    other = tmp_path / "other-ca.crt"
    other.write_bytes(pem(certificate("not the platform CA", ca=True)[0]))
    res = playbook("playbooks/doctor.yml", extra_vars={"coderstack_ca_path": str(other)})
    assert res.rc != 0
    text = _text(res)
    assert "ERROR | Coder's certificate is trusted" in text and "CERTIFICATE_VERIFY_FAILED" in text, text[-4000:]


def _build(testbed, kube, workspace_id: str, transition: str) -> None:
    build = testbed.coder(
        kube, f"/api/v2/workspaces/{workspace_id}/builds", method="POST", json={"transition": transition}
    )
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        job = testbed.coder(kube, f"/api/v2/workspacebuilds/{build['id']}")["job"]
        if job["status"] in ("succeeded", "failed", "canceled"):
            assert job["status"] == "succeeded", job
            return
        time.sleep(2)
    raise AssertionError(f"the {transition} build did not finish")


def test_a_disconnected_workspace_agent_is_found(converged, testbed, kube, playbook):
    """carol's workspace pod is deleted behind Coder's back: Coder still calls the workspace running, its agent's
    connection is gone, and the doctor names the workspace and how to find its pod. A stop and a start through Coder
    bring the pod back, and the doctor passes again once the agent is connected."""
    from kubernetes import client

    core = client.CoreV1Api(kube)
    pods = core.list_namespaced_pod("coder-workspaces", label_selector="com.coder.workspace.name=dev").items
    assert pods, "carol's dev workspace has no pod"
    workspace_id = pods[0].metadata.labels["com.coder.workspace.id"]
    core.delete_namespaced_pod(pods[0].metadata.name, "coder-workspaces", grace_period_seconds=0)
    try:
        deadline = time.monotonic() + 120
        while True:
            res = playbook("playbooks/doctor.yml")
            text = _text(res)
            if "ERROR | workspace agent carol/dev" in text or time.monotonic() > deadline:
                break
            time.sleep(5)
        assert res.rc != 0
        assert "ERROR | workspace agent carol/dev" in text and "agent disconnected" in text, text[-4000:]
        assert f"kubectl -n coder-workspaces get pods -l com.coder.workspace.id={workspace_id}" in text
    finally:
        _build(testbed, kube, workspace_id, "stop")
        _build(testbed, kube, workspace_id, "start")
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        res = playbook("playbooks/doctor.yml")
        if res.rc == 0:
            break
        time.sleep(5)
    assert res.rc == 0, "the agent did not connect again: " + _text(res)[-3000:]
