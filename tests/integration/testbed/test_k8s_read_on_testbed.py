"""coderstack.platform.k8s_read against the testbed's API server: one module run reads objects and lists, a missing
object is an empty list, and a Secret comes back with its keys only (its values never leave the module)."""

from __future__ import annotations

import base64

from helpers.modules import run_module


def test_reads_objects_and_lists_in_one_run_without_secret_values(converged, testbed, kube):
    from kubernetes import client

    url = base64.b64decode(client.CoreV1Api(kube).read_namespaced_secret("coder-db-url", "coder").data["url"]).decode()
    res = run_module(
        "coderstack.platform.k8s_read",
        {
            "kubeconfig": str(testbed.kubeconfig),
            "objects": {
                "db": {"kind": "Secret", "namespace": "coder", "name": "coder-db-url"},
                "svc": {"kind": "Service", "namespace": "coder", "name": "coder"},
                "missing": {"kind": "ConfigMap", "namespace": "coder", "name": "no-such-configmap"},
                "pods": {"kind": "Pod", "namespace": "coder", "label_selectors": ["app.kubernetes.io/name=coder"]},
                "skipped": {},
            },
        },
    )
    assert res.get("failed") is not True and res["changed"] is False, res
    objs = res["objects"]
    assert objs["db"]["resources"][0]["data"] == {"url": ""}
    assert url not in str(res) and base64.b64encode(url.encode()).decode() not in str(res)
    assert objs["svc"]["resources"][0]["metadata"]["annotations"]["coderstack.io/exposed"] == "true"
    assert objs["missing"]["resources"] == [] and objs["skipped"]["resources"] == []
    assert [p["kind"] for p in objs["pods"]["resources"]] == ["Pod"]
    assert objs["pods"]["resources"][0]["metadata"]["name"].startswith("coder-")
    bad = run_module("coderstack.platform.k8s_read", {"objects": {"x": {"name": "a"}}})
    assert bad.get("failed") is True and "objects.x.kind is required" in bad["msg"], bad
