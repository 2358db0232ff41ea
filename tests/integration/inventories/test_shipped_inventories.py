"""The inventories users run, unchanged, converge: `site.yml -i inventories/<env>` on the testbed, with only
testbed/on-testbed/common.yml and <env>.yml saying where the cluster, its charts, images and registry are (and its own
namespaces and DNS name, so it sits beside the testbed inventory's install). A second run changes nothing; the control
host verifies Coder with the CA the inventory exports; the templates are pushed; the namespaces are isolated. Everything
it made is removed afterwards (release, namespaces, the exported CA file).

`bare` runs on the Ansible users install today: the current-Ansible lane (scripts/lane.sh, ansible-core 2.21 on
Python 3.13) on plain `linear`, no third-party strategy. `minikube` runs on the 2.19 lane through Mitogen, as the rest
of the suite does."""

from __future__ import annotations

import functools
import subprocess
import threading

import pytest
import requests
import urllib3
from helpers.ansible_run import run_playbook
from helpers.parts import REPO, STATE, lane_ready, need

pytestmark = pytest.mark.slow
ENVS = {"bare": "bare.testbed.local", "minikube": "minikube.testbed.local"}
IN_LANE = {"bare"}


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


class FirstOwnerPoller(threading.Thread):
    """Asks ``https://<host>/api/v2/users/first`` through the testbed's Traefik every 0.2 s while a converge runs,
    as someone on the network would, and keeps each answer: (HTTP status or the error, Coder's message or "")."""

    def __init__(self, host: str):
        super().__init__(daemon=True)
        self.url = f"https://{host}/api/v2/users/first"
        self.answers: list[tuple[object, str]] = []
        self.stop = threading.Event()

    def ask(self) -> tuple[object, str]:
        try:  # the CA is made by the converge: not verified here, the question is only who answers
            r = requests.get(self.url, verify=False, timeout=5)  # noqa: S501
        except requests.RequestException as e:
            return type(e).__name__, ""
        is_json = r.headers.get("Content-Type", "").startswith("application/json")
        return r.status_code, (r.json().get("message", "") if is_json else "")

    def run(self) -> None:
        while not self.stop.is_set():
            self.answers.append(self.ask())
            self.stop.wait(0.2)


@pytest.fixture(scope="module", params=sorted(ENVS))
def shipped(request, testbed, tmp_path_factory):
    env = request.param
    if env in IN_LANE:
        need(lane_ready(), "the current-Ansible lane is not set up (bash scripts/lane.sh --setup)")
    _cleanup(env)
    args = ["-e", "@testbed/on-testbed/common.yml", "-e", f"@testbed/on-testbed/{env}.yml"]
    log = tmp_path_factory.mktemp(env) / "minikube-calls.log"
    # the minikube CLI stand-in (testbed/standins/minikube): its call log, the cluster, the node's containerd
    standin = {
        "MINIKUBE_STANDIN_LOG": str(log),
        "MINIKUBE_STANDIN_KUBECONFIG": str(STATE / "kubeconfig"),
        "MINIKUBE_STANDIN_CONTAINERD": str(STATE / "node/containerd/containerd.sock"),
    }
    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    poller = FirstOwnerPoller(ENVS[env])
    poller.start()
    try:
        converge = functools.partial(
            run_playbook, "site.yml", inventory=f"inventories/{env}", args=args, env=standin, timeout=1800,
            lane=env in IN_LANE,
        )  # fmt: skip
        first = converge()
        poller.stop.set()
        poller.join()
        assert first.rc == 0, f"site.yml -i inventories/{env} did not converge:\n{first.output[-5000:]}"
        second = converge()
        calls = log.read_text().splitlines() if log.exists() else []
        yield env, first, second, calls, poller
    finally:
        poller.stop.set()
        _cleanup(env)


def test_converges_and_a_second_run_changes_nothing(shipped):
    env, first, second, _, _ = shipped
    if env in IN_LANE:  # the lane's ansible-core ran it, on its own strategy (2.21 warns about any other)
        version = subprocess.run(
            ["bash", "scripts/lane.sh", "ansible", "--version"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout
        assert "[core 2.21." in version.splitlines()[0], version
        said = " ".join((first.output + second.output).split())
        assert "strategy plugins not included in ansible.builtin" not in said
    assert second.rc == 0, second.output[-5000:]
    assert second.changed == 0, second.output[-5000:]


def test_first_owner_is_never_claimable_through_the_ingress_during_the_converge(shipped):
    *_, poller = shipped
    answers = poller.answers
    assert len(answers) >= 20, answers  # the converge of a fresh install takes minutes: the poller kept asking
    # Coder answers 404 "The initial user has not been created!" while anyone could claim it: through the ingress,
    # Coder only ever answered that its owner exists; before, the answer was Traefik's (no route to Coder yet)
    from_coder = [a for a in answers if a[1]]
    assert all(a == (200, "The initial user has already been created!") for a in from_coder), answers
    assert answers[0][1] == "", answers
    # positive control: the same question through the same ingress now reaches Coder, which has its owner
    assert poller.ask() == (200, "The initial user has already been created!")


def test_control_host_verifies_coder_with_the_exported_ca(shipped):
    env, _, _, _, _ = shipped
    ca = REPO / "inventories" / env / "coder-ca.crt"
    assert ca.read_text().startswith("-----BEGIN CERTIFICATE-----")
    r = requests.get(f"https://{ENVS[env]}/healthz", verify=str(ca), timeout=10)
    assert r.status_code == 200 and r.text == "OK"


def test_templates_are_pushed_and_workspaces_isolated(shipped, kube):
    import base64

    from kubernetes import client

    env, _, _, _, _ = shipped
    core = client.CoreV1Api(kube)
    token = base64.b64decode(core.read_namespaced_secret("coder-admin-token", f"coder-{env}").data["token"]).decode()
    ca = REPO / "inventories" / env / "coder-ca.crt"
    r = requests.get(
        f"https://{ENVS[env]}/api/v2/templates", headers={"Coder-Session-Token": token}, verify=str(ca), timeout=10
    )
    assert r.status_code == 200
    assert {t["name"] for t in r.json()} >= {"kubernetes-dind", "kubernetes-ollama"}
    ws = core.read_namespace(f"coder-{env}-workspaces").metadata.labels
    # dockerd in user namespaces (coderstack_docker_mode userns): Pod Security privileged, guarded by our policy
    assert ws["pod-security.kubernetes.io/enforce"] == "privileged"
    policies = client.NetworkingV1Api(kube).list_namespaced_network_policy(f"coder-{env}-workspaces").items
    assert {p.metadata.name for p in policies} == {"coderstack-workspaces-default-deny", "coderstack-workspaces-egress"}


def test_minikube_addons_and_image_load_go_through_its_cli(shipped):
    env, _, _, calls, _ = shipped
    if env != "minikube":
        assert calls == []  # bare never calls minikube
        return
    assert "addons enable storage-provisioner -p standin" in calls
    # base_image_minikube_load: minikube is asked which images it has (and loads the base image when it lacks it)
    assert "-p standin image ls" in calls
