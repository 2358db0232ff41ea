"""Faults in the middle of a converge, against the testbed and the real Coder server.

* kube-apiserver is SIGKILLed (pid from .testbed/pids/kube-apiserver.pid) while site.yml runs, restarted with
  `bash testbed/up.sh`; the re-run converges and nothing is duplicated; the database URL Secret (which holds the
  database password) keeps its resourceVersion and the database still accepts the old URL.
* the Coder server is stopped (`testbed/svc_30_coder.sh stop`) while a template is being pushed, started again;
  the re-run leaves exactly one template of that name whose active version imported successfully.

Each fault is bounded: the playbook under test is killed after FAULT_TIMEOUT and every wait has a deadline."""

from __future__ import annotations

import json
import os
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
    need((testbed.state / "coder-url").exists(), "testbed Coder server is not running")
    res = run_playbook("site.yml")
    assert res.rc == 0, res.output[-4000:]
    return _secret_versions(kube)


def test_apiserver_killed_mid_converge_rerun_converges(testbed, kube, converged):
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

    res = run_playbook("site.yml")
    assert res.rc == 0, res.output[-4000:]
    res2 = run_playbook("site.yml")
    assert res2.rc == 0 and res2.changed == 0, res2.output[-4000:]

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

    conn = psycopg2.connect(base64.b64decode(url).decode(), connect_timeout=10)
    conn.close()


def _coder(testbed, kube, path: str, method: str = "GET"):
    import base64

    import requests
    from kubernetes import client

    token = client.CoreV1Api(kube).read_namespaced_secret("coder-admin-token", "coder").data["token"]
    hdr = {"Coder-Session-Token": base64.b64decode(token).decode()}
    resp = requests.request(method, testbed.read("coder-url") + path, headers=hdr, timeout=30)
    resp.raise_for_status()
    return resp.json() if method == "GET" else None


def test_coder_stopped_mid_template_push_rerun_one_version_promoted(testbed, kube, converged, tmp_path):
    need((REPO / "playbooks/templates.yml").exists(), "playbooks/templates.yml is not there yet")
    name = "fault-" + uuid.uuid4().hex[:6]
    src = tmp_path / name
    shutil.copytree(REPO / "templates" / "kubernetes-ollama", src)
    tpl = [{"name": name, "directory": str(src), "variables": {"namespace": "coder", "use_kubeconfig": False}}]
    # playbooks/templates.yml alone: the image reference that playbooks/image.yml would publish is named here
    image = testbed.read("registry-url") + "/coderstack/base:faults"
    extra = {"coder_templates": tpl, "coderstack_workspace_image": image}
    ev = json.dumps(extra)
    svc = ["bash", "testbed/svc_30_coder.sh"]

    def stop_coder():
        # a crash, not a graceful stop (which lets the in-flight import finish): SIGKILL, then svc stop cleans up
        pid = testbed.state / "pids" / "coder.pid"
        if pid.exists():
            os.kill(int(pid.read_text().strip()), signal.SIGKILL)
        subprocess.run([*svc, "stop"], cwd=REPO, capture_output=True, timeout=120, check=False)

    cmd = ["ansible-playbook", "playbooks/templates.yml", "-i", "inventories/testbed", "-e", ev]
    try:
        rc, out, fired = _run_until(cmd, "The token Secret exists", stop_coder, delay=1.5)
        assert fired, out[-3000:]
        assert rc != 0, "the push should fail while Coder is down:\n" + out[-3000:]
    finally:
        start = subprocess.run([*svc, "start"], cwd=REPO, capture_output=True, text=True, timeout=300)
        assert start.returncode == 0, start.stdout[-2000:] + start.stderr[-2000:]

    try:
        res = run_playbook("playbooks/templates.yml", extra_vars=extra)
        assert res.rc == 0, res.output[-4000:]
        res = run_playbook("playbooks/templates.yml", extra_vars=extra)
        assert res.rc == 0 and res.changed == 0, res.output[-4000:]

        templates = [t for t in _coder(testbed, kube, "/api/v2/templates") if t["name"] == name]
        assert len(templates) == 1
        versions = _coder(testbed, kube, f"/api/v2/templates/{templates[0]['id']}/versions")
        ok = [v for v in versions if v["job"]["status"] == "succeeded"]
        assert len(ok) == 1, [(v["name"], v["job"]["status"]) for v in versions]
        assert templates[0]["active_version_id"] == ok[0]["id"]
    finally:
        _delete_template(testbed, kube, name)


def _delete_template(testbed, kube, name: str) -> None:
    for t in _coder(testbed, kube, "/api/v2/templates"):
        if t["name"] == name:
            _coder(testbed, kube, f"/api/v2/templates/{t['id']}", method="DELETE")
