"""Preflight proves that the cluster enforces NetworkPolicies before anything of the platform changes: it passes on
the testbed (kube-router enforces them) and records it, and it stops the run, naming the variable that accepts the
risk, when the node enforces nothing (kube-router's firewall switched off: the bare bridge CNI)."""

from __future__ import annotations

import uuid

import pytest

PROOF = {"preflight_networkpolicy_proof": True}
ANNOTATION = "coderstack.io/networkpolicies-enforced"


@pytest.fixture()
def platform_ns(kube):
    """A platform namespace name the proof may record itself on; deleted afterwards."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    name = f"cs-np-{uuid.uuid4().hex[:8]}"
    yield name
    try:
        client.CoreV1Api(kube).delete_namespace(name)
    except ApiException as exc:
        if exc.status != 404:
            raise


def _annotations(kube, name: str) -> dict | None:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    try:
        return client.CoreV1Api(kube).read_namespace(name).metadata.annotations or {}
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def _proof_namespaces(kube) -> list[str]:
    """Scratch namespaces of the proof that are not on their way out."""
    from kubernetes import client

    items = client.CoreV1Api(kube).list_namespace(label_selector="coderstack.io/netpol-proof=true").items
    return [n.metadata.name for n in items if n.status.phase != "Terminating"]


def test_proof_passes_where_policies_are_enforced_and_is_recorded(kube, playbook, platform_ns):
    extra = {**PROOF, "coderstack_namespace": platform_ns}
    first = playbook("playbooks/preflight.yml", extra_vars=extra)
    assert first.rc == 0, first.output[-3000:]
    assert "NetworkPolicies are enforced (a denied pod was not reached, an open one was)" in first.output
    assert ANNOTATION in _annotations(kube, platform_ns)
    assert _proof_namespaces(kube) == [], "the scratch namespace was not deleted"
    # recorded: the next run does not prove it again
    again = playbook("playbooks/preflight.yml", extra_vars=extra)
    assert again.rc == 0 and "NetworkPolicies are enforced" not in again.output, again.output[-3000:]


def test_proof_stops_the_run_where_nothing_enforces_policies(testbed, kube, playbook, platform_ns):
    # 10 s of connections to the denied listener (30 by default) are enough where nothing ever denies them
    extra = {**PROOF, "coderstack_namespace": platform_ns, "preflight_networkpolicy_wait": 10}
    testbed.firewall(on=False)
    try:
        refused = playbook("playbooks/preflight.yml", extra_vars=extra)
        # the inventory that accepts the risk by name runs on the same cluster
        accepted = playbook("playbooks/preflight.yml", extra_vars={**extra, "preflight_networkpolicy_proof": False})
    finally:
        testbed.firewall(on=True)
    assert refused.rc != 0
    assert "NetworkPolicies are not enforced on this cluster" in refused.output, refused.output[-3000:]
    assert "preflight_networkpolicy_proof: false" in refused.output
    assert _annotations(kube, platform_ns) is None, "a refused proof changed the platform namespace"
    assert _proof_namespaces(kube) == [], "the scratch namespace was not deleted"
    assert accepted.rc == 0, accepted.output[-3000:]
