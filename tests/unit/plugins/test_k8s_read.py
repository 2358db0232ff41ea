"""coderstack.platform.k8s_read without a cluster: what an entry may say, and that a Secret's values never leave the
module (the integration tests read the testbed's objects through it in every converge)."""

from __future__ import annotations

import pytest
from ansible_collections.coderstack.platform.plugins.modules import k8s_read


@pytest.mark.parametrize(
    "entry",
    [
        {"kind": "Secret", "namespace": "coder", "name": "coder-tls"},
        {"kind": "Node"},
        {"api_version": "v1", "kind": "Pod", "namespace": "ws", "label_selectors": ["a=b", "c"]},
    ],
)
def test_usable_entries_have_no_problems(entry):
    assert k8s_read.entry_problems("x", entry) == []


@pytest.mark.parametrize(
    ("entry", "named"),
    [
        ("Secret", "objects.x must be a dict"),
        ({"name": "a"}, "objects.x.kind is required"),
        ({"kind": "Pod", "labels": ["a=b"]}, "objects.x has unknown keys ['labels']"),
        ({"kind": "Pod", "label_selectors": "a=b"}, "objects.x.label_selectors must be a list of strings"),
        ({"kind": "Pod", "name": "p", "label_selectors": ["a=b"]}, "name and label_selectors exclude each other"),
    ],
)
def test_bad_entries_are_named(entry, named):
    assert any(named in p for p in k8s_read.entry_problems("x", entry)), k8s_read.entry_problems("x", entry)


def test_a_secret_keeps_its_keys_and_loses_its_values():
    secret = {
        "kind": "Secret",
        "metadata": {"name": "s", "managedFields": [{"manager": "kubectl"}]},
        "data": {"password": "c2VjcmV0", "username": "dXNlcg=="},
        "stringData": {"token": "plain"},
    }
    out = k8s_read.without_secret_values(secret)
    assert out["data"] == {"password": "", "username": ""} and out["stringData"] == {"token": ""}
    assert "managedFields" not in out["metadata"] and out["metadata"]["name"] == "s"
    assert secret["data"]["password"] == "c2VjcmV0"  # the input is not modified
    # control: a ConfigMap's data is returned as it is
    cm = {"kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"ca.crt": "PEM"}}
    assert k8s_read.without_secret_values(cm)["data"] == {"ca.crt": "PEM"}
