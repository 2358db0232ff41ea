"""playbooks/teardown.yml on a scratch namespace shaped like an install (Secrets, PVC, PostgreSQL StatefulSet and
Service, a Coder release of the official chart), so the shared install in namespace `coder` is left alone. Its
pods are placed on the testbed's simulated nodes: only the objects matter here, nothing needs to run."""

from __future__ import annotations

import base64
import contextlib
import json
import subprocess
import uuid

import pytest
from helpers.parts import REPO, need

SECRETS = ["coder-db-url", "coder-db-credentials", "coder-admin"]


# pods of this fake install go to the simulated nodes (nothing is pulled or run there)
KWOK_SELECTOR = {"type": "kwok"}
MANAGED = {"app.kubernetes.io/managed-by": "coderstack"}
KWOK_TOLERATIONS = [{"key": "kwok.x-k8s.io/node", "operator": "Exists", "effect": "NoSchedule"}]


def _helm(testbed, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    cmd = [str(testbed.bin / "helm"), "--kubeconfig", str(testbed.kubeconfig), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False, input=stdin)


def _b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


def _db_statefulset(selector: dict, labels: dict | None = None):
    """A `coder-db` StatefulSet on the simulated nodes (nothing runs); labels on the object itself as given."""
    from kubernetes import client

    return client.V1StatefulSet(
        metadata=client.V1ObjectMeta(name="coder-db", labels=labels),
        spec=client.V1StatefulSetSpec(
            service_name="coder-db",
            selector=client.V1LabelSelector(match_labels=selector),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=selector),
                spec=client.V1PodSpec(
                    containers=[client.V1Container(name="pg", image="postgres:17.6")],
                    node_selector=KWOK_SELECTOR,
                    tolerations=KWOK_TOLERATIONS,
                ),
            ),
        ),
    )


@pytest.fixture()
def install(testbed, kube):
    from kubernetes import client

    need((testbed.bin / "helm").exists(), "testbed helm missing")
    ns = "td-" + uuid.uuid4().hex[:8]
    ing = ns + "-ing"
    core, apps = client.CoreV1Api(kube), client.AppsV1Api(kube)
    # the platform namespace as the namespaces role makes it (coderstack's label: a purge deletes only such namespaces)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns, labels=MANAGED)))
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ing)))
    for name in SECRETS:
        core.create_namespaced_secret(
            ns, client.V1Secret(metadata=client.V1ObjectMeta(name=name), data={"k": _b64("v")})
        )
    core.create_namespaced_persistent_volume_claim(
        ns,
        client.V1PersistentVolumeClaim(
            metadata=client.V1ObjectMeta(name="data-coder-db-0"),
            spec=client.V1PersistentVolumeClaimSpec(
                access_modes=["ReadWriteOnce"],
                resources=client.V1VolumeResourceRequirements(requests={"storage": "1Gi"}),
            ),
        ),
    )
    labels = {"app": "coder-db"}
    ours = {"app.kubernetes.io/managed-by": "coderstack"}  # what the postgres role puts on its objects
    core.create_namespaced_service(
        ns,
        client.V1Service(
            metadata=client.V1ObjectMeta(name="coder-db", labels=ours),
            spec=client.V1ServiceSpec(cluster_ip="None", selector=labels, ports=[client.V1ServicePort(port=5432)]),
        ),
    )
    apps.create_namespaced_stateful_set(ns, _db_statefulset(labels, ours))
    chart = testbed.state / "charts" / "coder.tgz"
    need(chart.exists(), "the official Coder chart is not packaged (bash testbed/build_chart.sh)")
    values = {
        "coderstack": {"managedBy": "coderstack"},  # the coder role's marker
        "coder": {"ingress": {"enable": False}, "nodeSelector": KWOK_SELECTOR, "tolerations": KWOK_TOLERATIONS},
    }
    r = _helm(testbed, "upgrade", "--install", "coder", str(chart), "-n", ns, "--values", "-", stdin=json.dumps(values))
    assert r.returncode == 0, r.stderr
    # the ingress role marks its release with coderstack.managedBy; a second release there is not coderstack's
    hello = str(REPO / "tests/fixtures/charts/hello")
    r = _helm(testbed, "upgrade", "--install", "ing", hello, "-n", ing, "--set", "coderstack.managedBy=coderstack")
    assert r.returncode == 0, r.stderr
    foreign = ns + "-foreign"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=foreign)))
    r = _helm(testbed, "upgrade", "--install", "ingress-nginx", hello, "-n", foreign)
    assert r.returncode == 0, r.stderr
    yield {"ns": ns, "ing": ing, "foreign": foreign}
    for name in (ns, ing, foreign):
        with contextlib.suppress(client.ApiException):
            core.delete_namespace(name)


def _exists(fn, *args) -> bool:
    from kubernetes import client

    try:
        fn(*args)
        return True
    except client.ApiException as exc:
        if exc.status == 404:
            return False
        raise


def _text(res) -> str:
    """The run's output with whitespace collapsed (the YAML callback wraps long messages)."""
    return " ".join(res.output.split())


def _releases(testbed, ns: str) -> list[str]:
    r = _helm(testbed, "list", "-n", ns, "-q")
    return r.stdout.split()


def test_teardown_keeps_data_is_idempotent_and_purge_needs_confirmation(install, testbed, kube, playbook):
    from kubernetes import client

    core, apps = client.CoreV1Api(kube), client.AppsV1Api(kube)
    ns = install["ns"]
    # the workspace namespace of this install: its own, so a purge here never touches the inventory's workspaces
    base = {"coderstack_namespace": ns, "coderstack_workspace_namespace": f"{ns}-ws", "postgres_mode": "incluster"}

    # purge without confirmation: fails first, names the variable, changes nothing
    res = playbook("playbooks/teardown.yml", extra_vars={**base, "coderstack_purge": True})
    assert res.rc != 0 and "coderstack_purge_confirm=yes-delete-all-data" in res.output, res.output
    assert res.changed == 0
    assert _releases(testbed, ns) == ["coder"]

    # check mode: reports, changes nothing
    res = playbook("playbooks/teardown.yml", extra_vars=base, args=["--check"])
    assert res.rc == 0, res.output
    assert res.changed > 0
    assert _releases(testbed, ns) == ["coder"]
    assert _exists(apps.read_namespaced_stateful_set, "coder-db", ns)

    # teardown: release, StatefulSet and Service gone; PVC, Secrets, templates and namespace kept, and said so
    res = playbook("playbooks/teardown.yml", extra_vars=base)
    assert res.rc == 0, res.output
    assert "Kept: the workspace templates (teardown_templates is false" in _text(res)
    assert "Kept PVCs: data-coder-db-0" in _text(res)
    assert "Kept Secrets: coder-admin, coder-db-credentials, coder-db-url" in _text(res)
    assert "Kept: the ingress controller (teardown_ingress is false)" in _text(res)
    assert _releases(testbed, ns) == []
    assert not _exists(apps.read_namespaced_stateful_set, "coder-db", ns)
    assert not _exists(core.read_namespaced_service, "coder-db", ns)
    assert _exists(core.read_namespaced_persistent_volume_claim, "data-coder-db-0", ns)
    for name in SECRETS:
        assert _exists(core.read_namespaced_secret, name, ns), name
    assert _releases(testbed, install["ing"]) == ["ing"]  # ingress only on request

    # idempotent
    res = playbook("playbooks/teardown.yml", extra_vars=base)
    assert res.rc == 0 and res.changed == 0, res.output

    # ingress on request: a release coderstack did not install (no coderstack.managedBy) is kept, and said so
    res = playbook(
        "playbooks/teardown.yml",
        extra_vars={**base, "teardown_ingress": True, "ingress_namespace": install["foreign"]},
    )
    assert res.rc == 0, res.output
    assert "kept: coderstack did not install it" in _text(res)
    assert _releases(testbed, install["foreign"]) == ["ingress-nginx"]
    assert _exists(core.read_namespace, install["foreign"])

    # ... and coderstack's own release goes, with its namespace
    ing = {
        "teardown_ingress": True,
        "ingress_namespace": install["ing"],
        "ingress_release_name": "ing",
    }
    res = playbook("playbooks/teardown.yml", extra_vars={**base, **ing})
    assert res.rc == 0, res.output
    assert f"ingress release {install['ing']}/ing uninstalled" in _text(res)
    assert f"ingress namespace {install['ing']} deleted" in _text(res)
    assert not _exists(core.read_namespace, install["ing"])

    # purge with confirmation: its last dump comes first, and a dump that cannot be made (this install's URL Secret
    # has no url) stops it before anything is deleted
    purge = {**base, "coderstack_purge": True, "coderstack_purge_confirm": "yes-delete-all-data"}
    res = playbook("playbooks/teardown.yml", extra_vars=purge)
    assert res.rc != 0 and "The last dump before the purge failed" in _text(res), res.output[-3000:]
    assert "teardown_purge_dump=false" in _text(res) and _exists(core.read_namespace, ns) and res.changed == 0
    # without the last dump: the namespace and its PVCs and Secrets are gone; again: changed=0
    purge["teardown_purge_dump"] = False
    res = playbook("playbooks/teardown.yml", extra_vars=purge)
    assert res.rc == 0, res.output
    assert "PVCs deleted: data-coder-db-0" in _text(res)
    assert not _exists(core.read_namespace, ns)
    res = playbook("playbooks/teardown.yml", extra_vars=purge)
    assert res.rc == 0 and res.changed == 0, res.output


def test_teardown_keeps_a_release_and_database_it_did_not_make(testbed, kube, playbook):
    """A Coder release without coderstack's marker and a coder-db StatefulSet without its label stay, and the summary
    says why (someone else's install in the namespace the inventory names)."""
    from kubernetes import client

    core, apps = client.CoreV1Api(kube), client.AppsV1Api(kube)
    ns = "td-" + uuid.uuid4().hex[:8]
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    try:
        r = _helm(testbed, "upgrade", "--install", "coder", str(REPO / "tests/fixtures/charts/hello"), "-n", ns)
        assert r.returncode == 0, r.stderr
        labels = {"app": "foreign-db"}
        apps.create_namespaced_stateful_set(ns, _db_statefulset(labels))
        ev = {"coderstack_namespace": ns, "coderstack_workspace_namespace": f"{ns}-ws", "postgres_mode": "incluster"}
        res = playbook("playbooks/teardown.yml", extra_vars=ev)
        assert res.rc == 0, res.output
        assert res.changed == 0, res.output
        assert f"Coder release {ns}/coder kept: coderstack did not install it" in _text(res)
        assert f"Kept: PostgreSQL {ns}/coder-db (coderstack did not make it" in _text(res)
        assert _releases(testbed, ns) == ["coder"]
        assert _exists(apps.read_namespaced_stateful_set, "coder-db", ns)
    finally:
        _helm(testbed, "uninstall", "coder", "-n", ns)
        core.delete_namespace(ns)


def test_teardown_lists_templates_with_the_admin_token(converged, testbed, kube, playbook):
    """With the real token and Coder answering, the template list call is made; an unknown name deletes nothing."""
    from kubernetes import client

    core = client.CoreV1Api(kube)
    try:
        token = core.read_namespaced_secret("coder-admin-token", "coder")
    except client.ApiException:
        need(False, "no coder/coder-admin-token Secret: converge site.yml first")
    ns = "td-" + uuid.uuid4().hex[:8]
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    try:
        core.create_namespaced_secret(
            ns, client.V1Secret(metadata=client.V1ObjectMeta(name="coder-admin-token"), data=token.data)
        )
        # its own workspace namespace too: the templates' inverse removes the agent probe there, never the platform's
        ev = {
            "coderstack_namespace": ns,
            "coderstack_workspace_namespace": f"{ns}-ws",
            "teardown_templates": True,
            "coder_templates_absent_names": ["no-such-template-" + ns],
        }
        res = playbook("playbooks/teardown.yml", extra_vars=ev)
        assert res.rc == 0, res.output
        assert "templates deleted: none" in _text(res)
        assert res.changed == 0
        assert base64.b64decode(token.data["token"]).decode() not in res.output
    finally:
        core.delete_namespace(ns)


@pytest.fixture()
def coder_with_workspace(tmp_path_factory):
    """A throwaway Coder with a provisioner, a template `td-tpl` (no resources) and a workspace built from it."""
    from ansible_collections.coderstack.platform.plugins.module_utils.coder_client import CoderClient
    from helpers.coder_server import ThrowawayCoder, need_coder_parts, need_terraform
    from helpers.modules import run_module

    need_coder_parts()
    need_terraform()
    client_cls = CoderClient
    srv = ThrowawayCoder(tmp_path_factory.mktemp("coder-td"), prefix="coder_td", provisioners=1).start()
    try:
        c = client_cls(srv.url)
        c.create_first_user("tdadmin", "tdadmin@it.example.com", "Td-Admin-Pass-4f1c9e2a7b", "Teardown Admin")
        session = c.login("tdadmin@it.example.com", "Td-Admin-Pass-4f1c9e2a7b")
        token = client_cls(srv.url, token=session).create_token("me", "td-it", 86400)
        tf = tmp_path_factory.mktemp("td-tpl")
        (tf / "main.tf").write_text("terraform {}\n")
        res = run_module(
            "coderstack.platform.coder_template",
            {"coder_url": srv.url, "coder_token": token, "name": "td-tpl", "directory": str(tf)},
        )
        assert not res.get("failed"), res
        api = client_cls(srv.url, token=token)
        api.request(
            "POST",
            "/api/v2/users/me/workspaces",
            json={"template_id": res["template"]["id"], "name": "td-ws"},
            expected=(200, 201),
        )
        yield srv, token, api
    finally:
        srv.stop()


def test_teardown_with_templates_stops_with_the_reason_when_a_workspace_exists(
    install, coder_with_workspace, testbed, kube, playbook
):
    """teardown_templates: a template with a workspace is refused by Coder: the run says which template and why,
    and stops before the Coder release, PostgreSQL or anything else is removed; the template is still there."""
    from kubernetes import client

    srv, token, api = coder_with_workspace
    ns = install["ns"]
    client.CoreV1Api(kube).create_namespaced_secret(
        ns, client.V1Secret(metadata=client.V1ObjectMeta(name="coder-admin-token"), data={"token": _b64(token)})
    )
    ev = {
        "coderstack_namespace": ns,
        "coderstack_workspace_namespace": f"{ns}-ws",
        "postgres_mode": "incluster",
        "teardown_templates": True,
        "coder_templates_absent_names": ["td-tpl"],
        "coderstack_coder_url": srv.url,
    }
    res = playbook("playbooks/teardown.yml", extra_vars=ev)
    assert res.rc != 0, res.output[-3000:]
    text = _text(res)
    assert "template td-tpl is kept: deleting template td-tpl" in text, res.output[-4000:]
    assert "Coder refuses while workspaces use the template" in text, res.output[-4000:]
    assert "were NOT removed" in text
    assert token not in res.output
    assert _releases(testbed, ns) == ["coder"]
    assert _exists(client.AppsV1Api(kube).read_namespaced_stateful_set, "coder-db", ns)
    assert [t["name"] for t in api.request("GET", "/api/v2/templates")] == ["td-tpl"]


def test_a_roles_inverse_runs_alone_from_its_playbook(testbed, kube, playbook):
    """`-e storage_state=absent` with playbooks/storage.yml: the storage role's inverse uninstalls the release it
    marked as coderstack's, reports it, and a second run changes nothing; a release without the marker stays."""
    from kubernetes import client

    core = client.CoreV1Api(kube)
    ns = "td-" + uuid.uuid4().hex[:8]
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    hello = str(REPO / "tests/fixtures/charts/hello")
    try:
        r = _helm(testbed, "upgrade", "--install", "lp", hello, "-n", ns, "--set", "coderstack.managedBy=coderstack")
        assert r.returncode == 0, r.stderr
        r = _helm(testbed, "upgrade", "--install", "other", hello, "-n", ns)
        assert r.returncode == 0, r.stderr
        ev = {"storage_state": "absent", "storage_namespace": ns}
        res = playbook("playbooks/storage.yml", extra_vars={**ev, "storage_release_name": "lp"})
        assert res.rc == 0, res.output[-3000:]
        assert f"storage release {ns}/lp uninstalled" in _text(res)
        assert _releases(testbed, ns) == ["other"]
        res = playbook("playbooks/storage.yml", extra_vars={**ev, "storage_release_name": "lp"})
        assert res.rc == 0 and res.changed == 0, res.output[-3000:]
        assert f"storage release {ns}/lp not found (nothing to remove)" in _text(res)
        res = playbook("playbooks/storage.yml", extra_vars={**ev, "storage_release_name": "other"})
        assert res.rc == 0 and res.changed == 0, res.output[-3000:]
        assert f"storage release {ns}/other kept: coderstack did not install it" in _text(res)
        assert _releases(testbed, ns) == ["other"]
    finally:
        _helm(testbed, "uninstall", "other", "-n", ns)
        core.delete_namespace(ns)
