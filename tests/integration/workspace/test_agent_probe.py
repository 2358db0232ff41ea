"""The agent URL probe of roles/coder_templates, against the real cluster: a pod in the workspace namespace with the
workspace image fetches the agent binary the way the agents' init script does. It passes on the testbed's real setup
(access URL + exported CA, or the in-cluster URL), and a deliberately broken CA or URL fails it with a message that
names the URL and the class of problem, and leaves no pod behind."""

from __future__ import annotations

import pytest
from helpers.ansible_run import run_playbook

pytestmark = pytest.mark.slow
PROBE = "tests/integration/workspace/probe.yml"


def workspace_image(kube) -> str:
    """The image site.yml pushed and carol's workspace runs (probe.yml runs without playbooks/image.yml)."""
    from kubernetes import client

    return client.CoreV1Api(kube).read_namespaced_pod("coder-carol-dev", "coder-workspaces").spec.containers[0].image


def no_probe_pod(kube) -> bool:
    from kubernetes import client

    pods = client.CoreV1Api(kube).list_namespaced_pod(
        "coder-workspaces", label_selector="app.kubernetes.io/name=coderstack-agent-probe"
    )
    return not pods.items


@pytest.mark.parametrize(
    "extra",
    [{}, {"coder_templates_coder_internal_url": "http://coder.coder.svc.cluster.local"}],
    ids=["access-url-with-exported-ca", "in-cluster-url"],
)
def test_probe_passes_on_the_real_setup(converged, kube, extra):
    res = run_playbook(PROBE, extra_vars={"coderstack_workspace_image": workspace_image(kube), **extra}, timeout=600)
    assert res.rc == 0, res.output[-3000:]
    assert res.changed == 0
    assert no_probe_pod(kube)


@pytest.mark.parametrize(
    "extra,problem",
    [
        ({"coder_templates_ca_configmap": ""}, "PROBLEM: TLS: the certificate of https://coder.testbed.local"),
        ({"coder_templates_agent_url": "https://nowhere.testbed.invalid"}, "PROBLEM: DNS: the host of"),
        ({"coder_templates_agent_url": "http://coder.coder.svc.cluster.local:9"}, "PROBLEM: no connection to"),
    ],
    ids=["no-ca", "unresolvable-url", "closed-port"],
)
def test_broken_ca_or_url_fails_naming_the_url_and_cause(converged, kube, extra, problem):
    res = run_playbook(PROBE, extra_vars={"coderstack_workspace_image": workspace_image(kube), **extra}, timeout=600)
    assert res.rc != 0
    out = res.output
    assert "Workspace agents could not fetch their binary from" in out
    assert problem in out, out[-3000:]
    assert no_probe_pod(kube)
