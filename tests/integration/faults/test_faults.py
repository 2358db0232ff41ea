"""Faults in the middle of a converge, against the testbed and the real Coder server.

* kube-apiserver is SIGKILLed (pid from .testbed/pids/kube-apiserver.pid) while site.yml runs, restarted with
  `bash testbed/up.sh`; the re-run converges and nothing is duplicated; the database URL Secret (which holds the
  database password) keeps its resourceVersion and the database still accepts the old URL.
* the PostgreSQL pod, or the Coder pod, is deleted while site.yml runs: the re-run converges, the one after reports
  changed=0, the Secrets (database password, admin password, token) keep their resourceVersions, the admin still
  logs in with the stored password and every user is still there;
* the Coder pod is deleted while a template is being pushed: the re-run leaves exactly one template of that name
  whose active version imported successfully.

Each fault is bounded: the playbook under test is killed after FAULT_TIMEOUT and every wait has a deadline."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
import uuid

import pytest
from helpers.ansible_run import run_playbook
from helpers.parts import REPO, need

pytestmark = pytest.mark.slow
FAULT_TIMEOUT = 420
SECRETS = ["coder-db-url", "coder-admin", "coder-admin-token"]


def _env() -> dict:
    env = dict(os.environ)
    env.setdefault("ANSIBLE_CONFIG", str(REPO / "ansible.cfg"))
    env["PATH"] = f"{REPO / '.venv/bin'}:{REPO / '.testbed/bin'}:{env.get('PATH', '')}"
    env["ANSIBLE_NOCOLOR"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _run_until(cmd: list[str], marker: str, action, delay: float = 0.0) -> tuple[int, str, bool]:
    """Run cmd; when a line containing marker appears, wait delay seconds and call action(); return rc, output,
    whether the action ran. Killed after FAULT_TIMEOUT."""
    proc = subprocess.Popen(cmd, cwd=REPO, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out, fired, deadline = [], False, time.monotonic() + FAULT_TIMEOUT
    assert proc.stdout is not None
    for line in proc.stdout:
        out.append(line)
        if not fired and marker in line:
            time.sleep(delay)
            action()
            fired = True
        if time.monotonic() > deadline:
            proc.kill()
            break
    rc = proc.wait(timeout=60)
    return rc, "".join(out), fired


def _secret_versions(kube) -> dict[str, str]:
    from kubernetes import client

    core = client.CoreV1Api(kube)
    return {n: core.read_namespaced_secret(n, "coder").metadata.resource_version for n in SECRETS}


def _wait(pred, seconds: int, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(1)
    raise AssertionError(f"timed out after {seconds}s waiting for {what}")


@pytest.fixture()
def converged(testbed, kube):
    """The testbed install is converged before the fault (site.yml once)."""
    res = run_playbook("site.yml")
    assert res.rc == 0, res.output[-4000:]
    return _secret_versions(kube)


def test_apiserver_killed_mid_converge_rerun_converges(testbed, kube, converged, tmp_path):
    import psycopg2
    from helpers.testbed import Testbed
    from kubernetes import client

    pidfile = testbed.state / "pids" / "kube-apiserver.pid"
    need(pidfile.exists(), "no kube-apiserver pid file")

    def kill_apiserver():
        os.kill(int(pidfile.read_text().strip()), signal.SIGKILL)

    cmd = ["ansible-playbook", "site.yml", "-i", "inventories/testbed"]
    try:
        rc, out, fired = _run_until(cmd, "PLAY [PostgreSQL", kill_apiserver, delay=1.0)
        assert fired, out[-3000:]
        assert rc != 0, "site.yml should fail without its API server:\n" + out[-3000:]
    finally:
        # a SIGKILLed apiserver can take longer than up.sh's own wait on 2 busy cores: one more try
        for _ in range(2):
            up = subprocess.run(["bash", "testbed/up.sh"], cwd=REPO, capture_output=True, text=True, timeout=300)
            if up.returncode == 0:
                break
        assert up.returncode == 0, up.stdout[-2000:] + up.stderr[-2000:]
    tb = Testbed(REPO)
    _wait(tb.api_ready, 120, "the API server")
    kube = tb.api_client()
    # the controller manager outlives the API server, its watches broken: it relists on its own backoff (up to
    # minutes on 2 busy cores). Wait for it here, so that this test and the next ones meet controllers that work.
    _wait(lambda: _controllers_work(kube), 300, "the controller manager to act again (a StatefulSet observed)")

    res = run_playbook("site.yml")
    assert res.rc == 0, res.output[-4000:]
    res2 = run_playbook("site.yml")
    # the tasks that changed, when one did (the run's tail alone does not show it)
    changed = re.findall(r"^TASK \[[^\n]*\n(?:(?!TASK \[)[^\n]*\n)*?changed: [^\n]*", res2.output, re.M)
    assert res2.rc == 0 and res2.changed == 0, "\n".join(changed)[-4000:] or res2.output[-4000:]

    # nothing duplicated
    helm = subprocess.run(
        [str(tb.bin / "helm"), "--kubeconfig", str(tb.kubeconfig), "list", "-A", "-o", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    names = [(r["namespace"], r["name"]) for r in json.loads(helm.stdout)]
    assert len(names) == len(set(names))
    assert names.count(("coder", "coder")) == 1
    apps = client.AppsV1Api(kube)
    assert [d.metadata.name for d in apps.list_namespaced_deployment("coder").items].count("coder") == 1
    # the secrets that hold the database password, the admin password and the token were not regenerated
    assert _secret_versions(kube) == converged
    url = subprocess.run(
        [
            str(tb.bin / "kubectl"),
            "--kubeconfig",
            str(tb.kubeconfig),
            "-n",
            "coder",
            "get",
            "secret",
            "coder-db-url",
            "-o",
            "jsonpath={.data.url}",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    import base64

    # the URL names the in-cluster Service: the control host reaches the pod behind it on the testbed's bridge
    # (hostaddr), and verifies its certificate for the URL's name with the CA the clients in the cluster use
    core = client.CoreV1Api(kube)
    pod_ip = core.read_namespaced_pod("coder-db-0", "coder").status.pod_ip
    ca = tmp_path / "db-ca.crt"
    ca.write_bytes(base64.b64decode(core.read_namespaced_secret("coder-db-tls", "coder").data["ca.crt"]))
    conn = psycopg2.connect(base64.b64decode(url).decode(), hostaddr=pod_ip, sslrootcert=str(ca), connect_timeout=10)
    conn.close()


def _controllers_work(kube) -> bool:
    """The controller manager acts: a StatefulSet of no replicas, created now, is observed by its controller."""
    from kubernetes import client

    apps = client.AppsV1Api(kube)
    name = "faults-controllers-" + uuid.uuid4().hex[:6]
    labels = {"app": name}
    body = client.V1StatefulSet(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1StatefulSetSpec(
            replicas=0,
            service_name=name,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="none")]),
            ),
        ),
    )
    apps.create_namespaced_stateful_set("default", body)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            sts = apps.read_namespaced_stateful_set(name, "default")
            if (sts.status.observed_generation or 0) >= sts.metadata.generation:
                return True
            time.sleep(0.5)
        return False
    finally:
        apps.delete_namespaced_stateful_set(name, "default")


def _delete_pods(kube, selector: str) -> list[str]:
    """Delete the pods of selector in namespace coder at once (a crash, not a graceful stop); their UIDs (a
    StatefulSet's replacement pod has the same name)."""
    from kubernetes import client

    core = client.CoreV1Api(kube)
    pods = core.list_namespaced_pod("coder", label_selector=selector).items
    for p in pods:
        core.delete_namespaced_pod(p.metadata.name, "coder", grace_period_seconds=0)
    return [p.metadata.uid for p in pods]


def _admin_logs_in(testbed, kube, answers: list | None = None) -> bool:
    """The admin's generated password (Secret coder/coder-admin) still logs in to the platform's Coder (each answer
    that is not a session is appended to `answers`, when given)."""
    import base64

    import requests
    from kubernetes import client

    data = client.CoreV1Api(kube).read_namespaced_secret("coder-admin", "coder").data
    creds = {k: base64.b64decode(data[k]).decode() for k in ("email", "password")}
    try:
        resp = requests.post(
            testbed.coder_url + "/api/v2/users/login", json=creds, timeout=30, verify=str(testbed.coder_ca)
        )
    except requests.RequestException as e:
        if answers is not None:
            answers.append(repr(e))
        return False
    if resp.status_code == 201 and resp.json().get("session_token"):
        return True
    if answers is not None:
        answers.append(f"HTTP {resp.status_code}: {resp.text[:300]}")
    return False


@pytest.mark.parametrize(
    ("selector", "marker"),
    [
        # PostgreSQL dies while Coder is being released: Coder loses its database mid-rollout
        ("app.kubernetes.io/name=postgres", "PLAY [Coder is installed with its Helm chart]"),
        # Coder dies while the users are being reconciled
        ("app.kubernetes.io/name=coder", "PLAY [Coder users match the inventory]"),
    ],
    ids=["postgres-pod", "coder-pod"],
)
def test_pod_deleted_mid_run_rerun_converges_and_keeps_data(testbed, kube, converged, selector, marker):
    users_before = sorted(u["username"] for u in testbed.coder(kube, "/api/v2/users?limit=1000")["users"])
    deleted: list[str] = []
    cmd = ["ansible-playbook", "site.yml", "-i", "inventories/testbed"]
    _rc, out, fired = _run_until(cmd, marker, lambda: deleted.extend(_delete_pods(kube, selector)), delay=1.0)
    assert fired and deleted, f"no pod matched {selector}:\n" + out[-3000:]
    # whatever the interrupted run did, the next one converges and the one after changes nothing
    res = run_playbook("site.yml")
    assert res.rc == 0, res.output[-4000:]
    res2 = run_playbook("site.yml")
    # the tasks that changed, when one did (the run's tail alone does not show it)
    changed = re.findall(r"^TASK \[[^\n]*\n(?:(?!TASK \[)[^\n]*\n)*?changed: [^\n]*", res2.output, re.M)
    assert res2.rc == 0 and res2.changed == 0, "\n".join(changed)[-4000:] or res2.output[-4000:]
    # the pod really came back (a new one), the Secrets were not regenerated, the data survived
    from kubernetes import client

    def replaced() -> bool:
        now = [
            p.metadata.uid for p in client.CoreV1Api(kube).list_namespaced_pod("coder", label_selector=selector).items
        ]
        return bool(now) and not set(now) & set(deleted)

    # recreating the pod is the controllers' work, on their own clock (slower right after the API server test before
    # this one restarted kube-apiserver): a bounded wait, and the pod must come back
    _wait(replaced, 180, f"a new pod for {selector} (deleted: {deleted})")
    assert _secret_versions(kube) == converged
    # the admin still logs in: the data survived (Coder reconnects to a new database pod on its own schedule)
    answers: list[str] = []
    try:
        _wait(lambda: _admin_logs_in(testbed, kube, answers), 120, "the admin to log in")
    except AssertionError as e:
        raise AssertionError(f"{e}; Coder's last answers: {answers[-3:]}") from None
    assert sorted(u["username"] for u in testbed.coder(kube, "/api/v2/users?limit=1000")["users"]) == users_before


def test_coder_killed_mid_template_push_rerun_one_version_promoted(testbed, kube, converged, tmp_path):
    name = "fault-" + uuid.uuid4().hex[:6]
    src = tmp_path / name
    shutil.copytree(REPO / "templates" / "kubernetes-ollama", src)
    tpl = [{"name": name, "directory": str(src), "variables": {"namespace": "coder", "use_kubeconfig": False}}]
    # playbooks/templates.yml alone: the image reference that playbooks/image.yml would publish is named here
    image = testbed.read("registry-url") + "/coderstack/base:faults"
    # the agent URL probe (tests/integration/workspace/test_agent_probe.py) would start a pod with that image
    extra = {"coder_templates": tpl, "coderstack_workspace_image": image, "coder_templates_agent_probe": False}
    cmd = ["ansible-playbook", "playbooks/templates.yml", "-i", "inventories/testbed", "-e", json.dumps(extra)]
    _rc, out, fired = _run_until(
        cmd, "Coder's templates are listed", lambda: _delete_pods(kube, "app.kubernetes.io/name=coder"), delay=1.5
    )
    assert fired, out[-3000:]
    try:
        # the replacement pod comes up through the Deployment; the re-run waits for it (coder role's wait is not
        # part of templates.yml, so wait here like an operator would)
        _wait(lambda: _admin_logs_in(testbed, kube), 300, "Coder to answer again")
        res = run_playbook("playbooks/templates.yml", extra_vars=extra)
        assert res.rc == 0, res.output[-4000:]
        res = run_playbook("playbooks/templates.yml", extra_vars=extra)
        assert res.rc == 0 and res.changed == 0, res.output[-4000:]

        templates = [t for t in testbed.coder(kube, "/api/v2/templates") if t["name"] == name]
        assert len(templates) == 1
        versions = testbed.coder(kube, f"/api/v2/templates/{templates[0]['id']}/versions")
        ok = [v for v in versions if v["job"]["status"] == "succeeded"]
        assert len(ok) == 1, [(v["name"], v["job"]["status"]) for v in versions]
        assert templates[0]["active_version_id"] == ok[0]["id"]
    finally:
        for t in testbed.coder(kube, "/api/v2/templates"):
            if t["name"] == name:
                testbed.coder(kube, f"/api/v2/templates/{t['id']}", method="DELETE")
