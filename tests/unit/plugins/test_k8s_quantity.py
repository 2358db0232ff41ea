"""The shared validation vocabulary (plugins/test/k8s_quantity.py): what Kubernetes takes as a quantity, as a value
comes from group_vars (integers, strings) and from the command line (`-e key=value`: always strings)."""

from __future__ import annotations

import pytest
from ansible_collections.coderstack.platform.plugins.test import k8s_quantity as validation

k8s_quantity = validation.k8s_quantity


@pytest.mark.parametrize(
    "value", [0, 2, 50, 1.5, "2", "250m", "1.5", "512Mi", "10Gi", "2Ti", "1e3", "100k", "0.5", ".5", "+1"]
)
def test_quantities_kubernetes_takes_pass(value):
    assert k8s_quantity(value) is True


@pytest.mark.parametrize(
    "value", [-1, "-1", "", None, True, False, "10GB", "10gi", "10 Gi", "Gi", "1.2.3", "ten", [], {"a": 1}, "1Kb"]
)
def test_other_values_are_refused(value):
    assert k8s_quantity(value) is False


def test_the_plugin_exports_its_test_by_name():
    assert validation.TestModule().tests() == {"k8s_quantity": k8s_quantity}
