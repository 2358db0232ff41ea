"""The inventories users run, unchanged, converge: `site.yml -i inventories/<env>` on the testbed, with only
testbed/on-testbed/common.yml and <env>.yml saying where the cluster, its charts, images and registry are (and its own
namespaces and DNS name, so it sits beside the testbed inventory's install). A second run changes nothing; the control
host verifies Coder with the CA the inventory exports; the templates are pushed; the namespaces are isolated. Everything
it made is removed afterwards (release, namespaces, the exported CA file)."""

from __future__ import annotations

import subprocess

import pytest
import requests
from helpers.ansible_run import run_playbook
from helpers.parts import REPO, STATE

pytestmark = pytest.mark.slow
ENVS = {"bare": "bare.testbed.local", "minikube": "minikube.testbed.local"}


def _cleanup(env: str) -> None:
    ns = f"coder-{env}"
    helm = [str(STATE / "bin/helm"), "--kubeconfig", str(STATE / "kubeconfig")]
    kubectl = [str(STATE / "bin/kubectl"), "--kubeconfig", str(STATE / "kubeconfig")]
    subprocess.run([*helm, "uninstall", "coder", "-n", ns, "--wait"], capture_output=True, check=False, timeout=300)
    subprocess.run(
        [
            *kubectl,
            "delete",
            "namespace",
            ns,
            f"{ns}-workspaces",
            "--ignore-not-found",
            "--wait=true",
            "--timeout=300s",
        ],
        capture_output=True,
        check=False,
        timeout=330,
    )
    (REPO / "inventories" / env / "coder-ca.crt").unlink(missing_ok=True)


@pytest.fixture(scope="module", params=sorted(ENVS))
def shipped(request, testbed, tmp_path_factory):
    env = request.param
    _cleanup(env)
    args = ["-e", "@testbed/on-testbed/common.yml", "-e", f"@testbed/on-testbed/{env}.yml"]
    log = tmp_path_factory.mktemp(env) / "minikube-calls.log"
    # the minikube CLI stand-in (testbed/standins/minikube): its call log, the cluster, the node's containerd
    standin = {
        "MINIKUBE_STANDIN_LOG": str(log),
        "MINIKUBE_STANDIN_KUBECONFIG": str(STATE / "kubeconfig"),
        "MINIKUBE_STANDIN_CONTAINERD": str(STATE / "node/containerd/containerd.sock"),
    }
    try:
        first = run_playbook("site.yml", inventory=f"inventories/{env}", args=args, env=standin, timeout=1800)
        assert first.rc == 0, f"site.yml -i inventories/{env} did not converge:\n{first.output[-5000:]}"
        second = run_playbook("site.yml", inventory=f"inventories/{env}", args=args, env=standin, timeout=1800)
        calls = log.read_text().splitlines() if log.exists() else []
        yield env, first, second, calls
    finally:
        _cleanup(env)


def test_converges_and_a_second_run_changes_nothing(shipped):
    _, _, second, _ = shipped
    assert second.rc == 0, second.output[-5000:]
    assert second.changed == 0, second.output[-5000:]


def test_control_host_verifies_coder_with_the_exported_ca(shipped):
    env, _, _, _ = shipped
    ca = REPO / "inventories" / env / "coder-ca.crt"
    assert ca.read_text().startswith("-----BEGIN CERTIFICATE-----")
    r = requests.get(f"https://{ENVS[env]}/healthz", verify=str(ca), timeout=10)
    assert r.status_code == 200 and r.text == "OK"


def test_templates_are_pushed_and_workspaces_isolated(shipped, kube):
    import base64

    from kubernetes import client

    env, _, _, _ = shipped
    core = client.CoreV1Api(kube)
    token = base64.b64decode(core.read_namespaced_secret("coder-admin-token", f"coder-{env}").data["token"]).decode()
    ca = REPO / "inventories" / env / "coder-ca.crt"
    r = requests.get(
        f"https://{ENVS[env]}/api/v2/templates", headers={"Coder-Session-Token": token}, verify=str(ca), timeout=10
    )
    assert r.status_code == 200
    assert {t["name"] for t in r.json()} >= {"kubernetes-dind", "kubernetes-ollama"}
    ws = core.read_namespace(f"coder-{env}-workspaces").metadata.labels
    assert ws["pod-security.kubernetes.io/enforce"] == "privileged"  # the inventory opts into docker-in-docker
    policies = client.NetworkingV1Api(kube).list_namespaced_network_policy(f"coder-{env}-workspaces").items
    assert {p.metadata.name for p in policies} == {"coderstack-workspaces-default-deny", "coderstack-workspaces-egress"}


def test_minikube_addons_and_image_load_go_through_its_cli(shipped):
    env, _, _, calls = shipped
    if env != "minikube":
        assert calls == []  # bare never calls minikube
        return
    assert "addons enable storage-provisioner -p standin" in calls
    # base_image_minikube_load: minikube is asked which images it has (and loads the base image when it lacks it)
    assert "-p standin image ls" in calls
