"""The cluster layer against the testbed: external PostgreSQL, the minikube path, bad input, secrets."""

from __future__ import annotations

import base64
import json
import os
import re
import urllib.parse

import pytest
from cluster_helpers import LAYER, namespace_exists

# An ingress run in a scratch namespace makes a CA of its own: it goes to that namespace only, never to the testbed
# install's workspace namespace (ConfigMap coder-ca) nor to the CA file the control host verifies Coder with.
OWN_CA = {"coderstack_ca_path": ""}

PG_PORT = int(os.environ.get("TESTBED_POSTGRES_PORT", "15432"))

# ---------------------------------------------------------------------------------------------------------------
# PostgreSQL, external mode, against the testbed's real server on 127.0.0.1:15432


def _external(namespace: str, url: str) -> dict:
    """The testbed inventory runs PostgreSQL in the cluster: these tests switch to external mode."""
    return {"coderstack_namespace": namespace, "postgres_mode": "external", "postgres_external_url": url}


def _url_secret(core, ns: str) -> str:
    return base64.b64decode(core.read_namespaced_secret("coder-db-url", ns).data["url"]).decode()


def test_helm_path_installs_an_ingress_nginx_release(playbook, kube, testbed, namespace, repo):
    """ingress_controller: helm with the ingress-nginx values interface (the stand-in chart: ingress-nginx cannot be
    built here); its controller is placed on the simulated nodes through the chart's own nodeSelector/tolerations."""
    import subprocess

    from kubernetes import client

    cls = f"nginx-{namespace}"
    extra = {
        "coderstack_namespace": namespace,
        "coderstack_workspace_namespace": namespace,
        # one namespace for the platform and the workspaces: dockerd in workspaces is refused there
        "coderstack_docker_mode": "none",
        **OWN_CA,
        "ingress_controller": "helm",
        "coderstack_ingress_class": cls,
        "ingress_class_default": False,
        "ingress_namespace": namespace,
        "ingress_release_name": "ingress-nginx",
        "ingress_chart_ref": str(repo / "testbed/standins/charts/ingress-nginx-standin"),
        "ingress_chart_repo_url": "",
        # the bare inventory's way in (no load balancer here: helm --wait would wait for an address forever)
        "ingress_exposure": "hostport",
        "ingress_chart_values": {
            "controller": {
                "nodeSelector": {"type": "kwok"},
                "tolerations": [{"key": "kwok.x-k8s.io/node", "operator": "Exists", "effect": "NoSchedule"}],
            }
        },
    }
    try:
        res = playbook("playbooks/ingress.yml", extra_vars=extra)
        assert res.rc == 0, res.output[-3000:]
        ic = client.NetworkingV1Api(kube).read_ingress_class(cls)
        assert ic.spec.controller == "k8s.io/ingress-nginx"
        dep = client.AppsV1Api(kube).read_namespaced_deployment("ingress-nginx-controller", namespace)
        assert dep.status.ready_replicas == 1
        helm = [str(testbed.bin / "helm"), "--kubeconfig", str(testbed.kubeconfig)]
        values = json.loads(
            subprocess.run(
                [*helm, "get", "values", "ingress-nginx", "-n", namespace, "-o", "json"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )["controller"]
        # ingress-nginx's values for hostPorts 80/443 on every node
        exposure = (values["kind"], values["hostPort"]["enabled"], values["service"]["type"])
        assert exposure == ("DaemonSet", True, "ClusterIP")
        assert values["nodeSelector"] == {"type": "kwok"}  # the inventory's own values still win
        again = playbook("playbooks/ingress.yml", extra_vars=extra)
        assert again.rc == 0 and again.changed == 0, again.output[-3000:]
    finally:
        helm = [str(testbed.bin / "helm"), "--kubeconfig", str(testbed.kubeconfig)]
        subprocess.run([*helm, "uninstall", "ingress-nginx", "-n", namespace], capture_output=True, check=False)


def test_external_url_is_checked_and_written(playbook, core, namespace, postgres_url):
    res = playbook("playbooks/postgres.yml", extra_vars=_external(namespace, postgres_url))
    assert res.rc == 0, res.output[-3000:]
    assert "connected as coder to database coder" in res.output
    assert _url_secret(core, namespace) == postgres_url
    again = playbook("playbooks/postgres.yml", extra_vars=_external(namespace, postgres_url))
    assert again.rc == 0 and again.changed == 0, again.output[-3000:]


def test_external_sslmode_is_set_in_url(playbook, core, namespace, postgres_url):
    extra = {**_external(namespace, postgres_url), "postgres_sslmode": "prefer"}
    res = playbook("playbooks/postgres.yml", extra_vars=extra)
    assert res.rc == 0, res.output[-3000:]
    url = _url_secret(core, namespace)
    assert url.endswith("?sslmode=prefer") and url.count("sslmode=") == 1


def test_external_wrong_password_fails_and_changes_nothing(playbook, core, namespace, postgres_url):
    from kubernetes import client

    parts = urllib.parse.urlsplit(postgres_url)
    wrong = postgres_url.replace(f":{parts.password}@", ":not-the-password@")
    # An existing Secret from an earlier good run must stay as it was.
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    before = base64.b64encode(b"postgres://earlier").decode()
    core.create_namespaced_secret(
        namespace, client.V1Secret(metadata=client.V1ObjectMeta(name="coder-db-url"), data={"url": before})
    )
    res = playbook("playbooks/postgres.yml", extra_vars=_external(namespace, wrong))
    assert res.rc != 0
    assert f"cannot connect to the external PostgreSQL 127.0.0.1:{PG_PORT} as coder" in res.output
    assert 'password authentication failed for user "coder"' in res.output
    assert "Nothing was changed on the cluster" in res.output
    assert "not-the-password" not in res.output
    assert core.read_namespaced_secret("coder-db-url", namespace).data["url"] == before


def test_external_unreachable_server_fails_before_namespace(playbook, core, namespace):
    url = "postgres://coder:pw@127.0.0.1:1/coder?sslmode=disable"
    res = playbook("playbooks/postgres.yml", extra_vars=_external(namespace, url))
    assert res.rc != 0
    assert "cannot connect to the external PostgreSQL 127.0.0.1:1" in res.output
    assert not namespace_exists(core, namespace)


# ---------------------------------------------------------------------------------------------------------------
# Secrets never show up, even with -vvv


def test_incluster_password_never_printed(playbook, core, namespace):
    extra = {"coderstack_namespace": namespace, "postgres_mode": "incluster", "postgres_storage_size": "1Gi"}
    res = playbook("playbooks/postgres.yml", extra_vars=extra, args=["-vvv"])
    assert res.rc == 0, res.output[-4000:]
    creds = core.read_namespaced_secret("coder-db-credentials", namespace).data
    password = base64.b64decode(creds["password"]).decode()
    url = _url_secret(core, namespace)
    assert len(password) == 32 and password in url
    for shown in (password, creds["password"], urllib.parse.quote(password), base64.b64encode(url.encode()).decode()):
        assert shown not in res.output
    # Generated once: a second run keeps the password and changes nothing.
    again = playbook("playbooks/postgres.yml", extra_vars=extra)
    assert again.rc == 0 and again.changed == 0, again.output[-3000:]
    assert core.read_namespaced_secret("coder-db-credentials", namespace).data["password"] == creds["password"]


# ---------------------------------------------------------------------------------------------------------------
# The minikube path: a node labelled like minikube, the minikube CLI stand-in recording its calls


def test_minikube_path_enables_addons_once(playbook, core, namespace, minikube_node, minikube_standin):
    extra = {
        "coderstack_namespace": namespace,
        "coderstack_workspace_namespace": namespace,
        # one namespace for the platform and the workspaces: dockerd in workspaces is refused there
        "coderstack_docker_mode": "none",
        **OWN_CA,
        "coderstack_target": "auto",
        # the minikube inventory's ingress settings (the testbed inventory uses its Traefik)
        "ingress_controller": "auto",
        "coderstack_ingress_class": "nginx",
        "coderstack_minikube_binary": minikube_standin.binary,
        "coderstack_minikube_profile": "standin",
    }
    for pb in ("playbooks/ingress.yml", "playbooks/storage.yml"):
        res = playbook(pb, extra_vars=extra, env=minikube_standin.env)
        assert res.rc == 0, res.output[-3000:]
        assert "target minikube (detected)" in res.output
    calls = minikube_standin.calls()
    assert "version --short" in calls
    assert "addons list -p standin -o json" in calls
    assert "addons enable ingress -p standin" in calls
    assert "addons enable storage-provisioner -p standin" in calls
    assert "addons enable default-storageclass -p standin" in calls
    assert core.read_namespaced_config_map("coder-ca", namespace).data["ca.crt"].startswith("-----BEGIN CERTIFICATE")
    # Re-run: the addons are listed as enabled, nothing is enabled again, nothing changes.
    n = len(calls)
    for pb in ("playbooks/ingress.yml", "playbooks/storage.yml"):
        res = playbook(pb, extra_vars=extra, env=minikube_standin.env)
        assert res.rc == 0 and res.changed == 0, res.output[-3000:]
    assert not [c for c in minikube_standin.calls()[n:] if c.startswith("addons enable")]


def test_minikube_target_without_cli_fails(playbook, namespace, minikube_node):
    extra = {
        "coderstack_namespace": namespace,
        "coderstack_target": "auto",
        "coderstack_minikube_binary": "/nonexistent/mk",
    }
    res = playbook("playbooks/preflight.yml", extra_vars=extra)
    assert res.rc != 0
    assert "the target is minikube but the minikube CLI is not found or not working at /nonexistent/mk" in res.output


# ---------------------------------------------------------------------------------------------------------------
# Bad input: each case fails before anything changes, naming what is wrong


def _unreachable_kubeconfig(tmp_path, testbed) -> str:
    text = re.sub(r"server: https://[^\s]+", "server: https://127.0.0.1:1", testbed.kubeconfig.read_text())
    path = tmp_path / "unreachable.kubeconfig"
    path.write_text(text)
    return str(path)


BAD_INPUT = [
    (
        "size",
        {"postgres_mode": "incluster", "postgres_storage_size": "10 gigs"},
        "postgres_storage_size '10 gigs' is not a Kubernetes quantity",
    ),
    ("mode", {"postgres_mode": "cloud"}, "value of postgres_mode must be one of: incluster, external, got: cloud"),
    ("chart_ref", {"ingress_chart_ref": "not a chart!"}, "ingress_chart_ref 'not a chart!' is not a usable chart"),
    ("chart_path", {"ingress_chart_ref": "/nonexistent/chart"}, "the local chart path does not exist"),
    (
        "chart_unpinned",
        {
            "ingress_chart_ref": "ingress-nginx",
            "ingress_chart_repo_url": "https://kubernetes.github.io/ingress-nginx",
            "ingress_chart_version": "",
        },
        "a chart name needs ingress_chart_repo_url (http(s)://) and a pinned ingress_chart_version",
    ),
    (
        "oci_unpinned",
        {"storage_provisioner": "local-path", "storage_chart_ref": "oci://registry.example/charts/lpp"},
        "an OCI reference needs a pinned storage_chart_version",
    ),
    (
        "kubeconfig",
        {"coderstack_kubeconfig": "/nonexistent/kubeconfig"},
        "kubeconfig /nonexistent/kubeconfig does not exist or is not readable",
    ),
    ("unreachable", "UNREACHABLE", "cannot reach the Kubernetes API server https://127.0.0.1:1 with kubeconfig"),
    ("context", {"coderstack_context": "nope"}, "context 'nope' is not in kubeconfig"),
    ("domain", {"coderstack_domain": "Coder_Test"}, "coderstack_domain 'Coder_Test' is not a DNS name"),
    (
        "domain_wildcard",
        {"coderstack_domain": "*.coder.example.com"},
        "coderstack_domain '*.coder.example.com' is not a DNS name",
    ),
    (
        "target",
        {"coderstack_target": "gke"},
        "value of coderstack_target must be one of: auto, minikube, bare, got: gke",
    ),
    ("typo", {"postgres_storge_size": "5Gi"}, "unknown variable(s) postgres_storge_size"),
    (
        "external_url",
        {"postgres_mode": "external", "postgres_external_url": ""},
        "postgres_external_url is empty, and postgres_mode is external",
    ),
    ("sslmode", {"postgres_sslmode": "maybe"}, "value of postgres_sslmode must be one of"),
    ("resources", {"postgres_resources": {"requests": {"cpu": "lots"}}}, "postgres_resources"),
    ("helm", {"coderstack_helm_binary": "/nonexistent/helm"}, "helm not found or not working at /nonexistent/helm"),
    ("k8s_version", {"preflight_min_kubernetes_version": "9.0"}, "is older than the supported minimum 9.0"),
    ("tls_mode", {"ingress_tls_mode": "letsencrypt"}, "value of ingress_tls_mode must be one of: selfsigned, provided"),
    ("replicas", {"ingress_replicas": "two"}, "ingress_replicas"),
]


@pytest.mark.parametrize(("case", "extra", "message"), BAD_INPUT, ids=[c[0] for c in BAD_INPUT])
def test_bad_input_fails_before_any_change(playbook, core, namespace, tmp_path, testbed, case, extra, message):
    if extra == "UNREACHABLE":
        extra = {"coderstack_kubeconfig": _unreachable_kubeconfig(tmp_path, testbed)}
    res = playbook(LAYER, extra_vars={"coderstack_namespace": namespace, **extra}, timeout=300)
    assert res.rc != 0, res.output[-2000:]
    flat = " ".join(res.output.split())
    assert message in flat, flat[-3000:]
    assert "changed=0" in res.output or not res.recap, res.output[-2000:]
    assert all(h["changed"] == 0 for h in res.recap.values()), res.recap
    assert not namespace_exists(core, namespace)


# ---------------------------------------------------------------------------------------------------------------
# coderstack_docker_mode privileged: the docker workspaces get a namespace of their own, the others stay baseline


def test_privileged_docker_gets_a_namespace_of_its_own(playbook, kube, namespace):
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    core = client.CoreV1Api(kube)
    ws, docker = f"{namespace}-ws", f"{namespace}-ws-docker"
    extra = {
        "coderstack_namespace": namespace,
        "coderstack_workspace_namespace": ws,
        "coderstack_docker_mode": "privileged",
        "preflight_networkpolicy_proof": False,
    }
    try:
        res = playbook("playbooks/namespaces.yml", extra_vars=extra)
        assert res.rc == 0, res.output[-3000:]
        levels = {n: core.read_namespace(n).metadata.labels["pod-security.kubernetes.io/enforce"] for n in (ws, docker)}
        assert levels == {ws: "baseline", docker: "privileged"}
        # the docker namespace is fenced like the workspace one, with the same limits
        for n in (ws, docker):
            policies = {p.metadata.name for p in client.NetworkingV1Api(kube).list_namespaced_network_policy(n).items}
            assert policies == {"coderstack-workspaces-default-deny", "coderstack-workspaces-egress"}, (n, policies)
            assert core.read_namespaced_resource_quota("coderstack-workspaces", n).spec.hard["pods"] == "50"
        # no user-namespace admission policy in this mode
        vap = client.AdmissionregistrationV1Api(kube)
        with pytest.raises(ApiException) as gone:
            vap.read_validating_admission_policy(f"coderstack-workspace-pods.{ws}")
        assert gone.value.status == 404
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "dind"},
            "spec": {"containers": [{"name": "c", "image": "busybox", "securityContext": {"privileged": True}}]},
        }
        with pytest.raises(ApiException) as refused:
            core.create_namespaced_pod(ws, pod, dry_run="All")
        assert refused.value.status == 403 and "violates PodSecurity" in refused.value.body
        core.create_namespaced_pod(docker, pod, dry_run="All")  # control: admitted where docker workspaces run
        again = playbook("playbooks/namespaces.yml", extra_vars=extra)
        assert again.rc == 0 and again.changed == 0, again.output[-3000:]
    finally:
        for n in (ws, docker):
            try:
                core.delete_namespace(n)
            except ApiException as exc:
                if exc.status != 404:
                    raise
