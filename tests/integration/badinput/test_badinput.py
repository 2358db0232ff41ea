"""Wrong inventories: each run of site.yml fails before any change, with a message naming the variable.

Every case runs `ansible-playbook site.yml -i inventories/testbed -e ...` (or a copy of inventories/testbed with
one file changed) with a fresh `coderstack_namespace` that must not exist afterwards; the recap must say
changed=0. The unreachable-cluster and wrong-context cases prove the preflight stops before any API write."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import pytest
import yaml
from helpers.parts import REPO

# (id, extra vars, substring the failure message must contain). Cases the cluster layer suite already runs
# (tests/integration/cluster: postgres mode, resources, context, helm, Kubernetes version) are not repeated here.
CASES = [
    # types
    ("namespace-invalid-name", {"coderstack_namespace": "Bad_Namespace"}, "coderstack_namespace 'Bad_Namespace'"),
    ("replicas-not-int", {"coder_replicas": "many"}, "coder_replicas"),
    ("port-not-int", {"postgres_port": "fivefourthreetwo"}, "postgres_port"),
    ("users-not-list", {"coder_users": "alice"}, "coder_users"),
    ("target-not-a-choice", {"coderstack_target": "cloud"}, "coderstack_target"),
    ("teardown-flag-not-bool", {"teardown_ingress": "perhaps"}, "teardown_ingress"),
    # unknown keys (typos of role variables)
    ("unknown-postgres-key", {"postgres_storage_sise": "10Gi"}, "unknown variable(s) postgres_storage_sise"),
    ("unknown-coder-key", {"coder_chart_verison": "2.14.2"}, "unknown variable(s) coder_chart_verison"),
    ("unknown-backup-key", {"postgres_backup_directory": "/tmp"}, "postgres_backup_directory"),
    # bad URLs
    ("access-url-scheme", {"coder_access_url": "ftp://coder.example.com"}, "coder_access_url=ftp://coder.example.com"),
    ("wildcard-not-wildcard", {"coder_wildcard_access_url": "apps.example.com"}, "coder_wildcard_access_url"),
    ("chart-repo-url", {"coder_chart_repo_url": "ftp://charts.example.com"}, "coder_chart_repo_url"),
    ("external-db-url", {"postgres_external_url": "mysql://nope"}, "postgres_external_url"),
    (
        "domain-with-scheme",
        {"coderstack_domain": "https://coder.example.com"},
        "coderstack_domain 'https://coder.example.com' is not a DNS name",
    ),
    # bad sizes and numbers
    ("pg-size-units", {"postgres_storage_size": "10 GB"}, "postgres_storage_size '10 GB' is not a Kubernetes quantity"),
    ("password-too-short", {"postgres_password_length": 8}, "postgres_password_length >= 16"),
    ("wait-timeout-zero", {"coder_wait_timeout": 0}, "coder_wait_timeout=0 > 0"),
    ("backup-pvc-size", {"postgres_backup_pvc_size": "ten gigs"}, "postgres_backup_pvc_size"),
    # missing secrets / files
    (
        "provided-tls-secret-missing",
        {"ingress_tls_mode": "provided", "ingress_tls_secret_name": "no-such-tls"},
        "ingress_tls_mode is provided but Secret",
    ),
    ("kubeconfig-missing", {"coderstack_kubeconfig": "/nonexistent/kubeconfig"}, "coderstack_kubeconfig"),
    # cluster and context
    # unsupported versions
    ("helm-too-old", {"preflight_helm_min_version": "9.0.0"}, "is not supported: need major"),
]


def _namespace_exists(kube, name: str) -> bool:
    from kubernetes import client

    try:
        client.CoreV1Api(kube).read_namespace(name)
        return True
    except client.ApiException as exc:
        if exc.status == 404:
            return False
        raise


def _assert_failed_before_change(res, expect: str, kube, ns: str) -> None:
    assert res.rc != 0, res.output[-3000:]
    assert expect in res.output, f"expected {expect!r} in:\n{res.output[-4000:]}"
    assert res.changed == 0, res.output[-3000:]
    if ns.islower():
        assert not _namespace_exists(kube, ns), f"namespace {ns} was created"


@pytest.mark.parametrize(("extra", "expect"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_extra_vars_fail_before_any_change(testbed, kube, playbook, extra, expect):
    ns = "bad-" + uuid.uuid4().hex[:8]
    ev = {"coderstack_namespace": ns, **extra}
    res = playbook("site.yml", extra_vars=ev, timeout=300)
    _assert_failed_before_change(res, expect, kube, ev["coderstack_namespace"])


@pytest.fixture()
def inventory_copy(tmp_path: Path):
    """inventories/testbed copied to <tmp>/inventories/testbed; <tmp>/.testbed and <tmp>/tests link to the repo's
    so the inventory's relative paths ({{ inventory_dir }}/../../.testbed) still resolve."""
    root = tmp_path / "repo"
    inv = root / "inventories" / "testbed"
    shutil.copytree(REPO / "inventories" / "testbed", inv)
    (root / ".testbed").symlink_to(REPO / ".testbed")
    (root / "tests").symlink_to(REPO / "tests")
    return inv


def test_unreachable_cluster_fails_before_any_change(testbed, kube, playbook, inventory_copy, tmp_path):
    """A kubeconfig whose server is a closed loopback port: the preflight says which server it could not reach."""
    kc = yaml.safe_load(testbed.kubeconfig.read_text())
    for c in kc["clusters"]:
        c["cluster"]["server"] = "https://127.0.0.1:1"
    bad = tmp_path / "kubeconfig-unreachable"
    bad.write_text(yaml.safe_dump(kc))
    ns = "bad-" + uuid.uuid4().hex[:8]
    res = playbook(
        "site.yml", inventory=inventory_copy, extra_vars={"coderstack_namespace": ns, "coderstack_kubeconfig": str(bad)}
    )
    _assert_failed_before_change(res, "cannot reach the Kubernetes API server https://127.0.0.1:1", kube, ns)


def test_inventory_file_with_wrong_type_fails(testbed, kube, playbook, inventory_copy):
    """One group_vars file changed in a copied inventory: coder_users as a mapping instead of a list."""
    ns = "bad-" + uuid.uuid4().hex[:8]
    (inventory_copy / "group_vars/all/coder_users.yml").write_text(
        yaml.safe_dump({"coder_users": {"username": "alice", "email": "alice@example.com"}})
    )
    res = playbook("site.yml", inventory=inventory_copy, extra_vars={"coderstack_namespace": ns})
    _assert_failed_before_change(res, "coder_users", kube, ns)


def test_inventory_file_with_typo_fails(testbed, kube, playbook, inventory_copy):
    """A misspelled variable in an inventory file (not -e) is caught the same way."""
    ns = "bad-" + uuid.uuid4().hex[:8]
    day2 = inventory_copy / "group_vars/all/day2.yml"
    day2.write_text(day2.read_text() + "\nteardown_ingres: true\n")
    res = playbook("site.yml", inventory=inventory_copy, extra_vars={"coderstack_namespace": ns})
    _assert_failed_before_change(res, "unknown variable(s) teardown_ingres", kube, ns)


def test_cases_cover_every_category():
    assert len(CASES) + 3 >= 20
    assert json.dumps([c[0] for c in CASES])
