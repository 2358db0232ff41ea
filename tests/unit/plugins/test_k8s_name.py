"""The validation vocabulary's names (plugins/test/k8s_name.py, k8s_dns_label.py): what Kubernetes accepts as an
object name (a DNS-1123 subdomain) and as a namespace or Service name (a DNS-1123 label)."""

from __future__ import annotations

import pytest
from ansible_collections.coderstack.platform.plugins.test.k8s_dns_label import k8s_dns_label
from ansible_collections.coderstack.platform.plugins.test.k8s_name import k8s_name


@pytest.mark.parametrize("value", ["coder-db-url", "a", "0", "coder.tls", "x" * 253, "a-b.c-d.e", "cluster.local"])
def test_object_names_kubernetes_takes_pass(value):
    assert k8s_name(value) is True


@pytest.mark.parametrize(
    "value", ["", "a..b", ".a", "a.", "-a", "a-", "A", "coder_db", "x" * 254, "a b", None, True, 5, ["a"], "a.-b"]
)
def test_other_object_names_are_refused(value):
    assert k8s_name(value) is False


@pytest.mark.parametrize("value", ["coder", "coder-workspaces", "a", "x" * 63, "0abc"])
def test_labels_kubernetes_takes_pass(value):
    assert k8s_dns_label(value) is True


@pytest.mark.parametrize("value", ["", "x" * 64, "a.b", "Coder", "coder_ws", "-a", "a-", None, False, 3])
def test_other_labels_are_refused(value):
    assert k8s_dns_label(value) is False
