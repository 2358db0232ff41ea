"""The agent URL probe of roles/coder_templates, against the real cluster: a Deployment in the workspace namespace with
the workspace image fetches the agent binary the way the agents' init script does, as its readiness check. It passes on
the testbed's real setup (access URL + exported CA, or the in-cluster URL), a re-run reads the live verdict without
changing anything, and a deliberately broken CA or URL fails the run with a message that names the URL and the class
of problem (the failed check's output), leaving the failing probe pod for inspection. The same check proves that the
cluster enforces the workspace NetworkPolicies: a workspace pod must not reach the API server (the passing runs), and
reaching a URL it should not fails the run, naming it."""

from __future__ import annotations

import pytest
from helpers.ansible_run import run_playbook
from helpers.pods import workspace_image

pytestmark = pytest.mark.slow
PROBE = "tests/integration/workspace/probe.yml"


def probe_pods(kube) -> list:
    """The probe's pods that are not being deleted, each as (name, Ready)."""
    from kubernetes import client

    pods = client.CoreV1Api(kube).list_namespaced_pod(
        "coder-workspaces", label_selector="app.kubernetes.io/name=coderstack-agent-probe"
    )
    return [
        (p.metadata.name, any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or []))
        for p in pods.items
        if p.metadata.deletion_timestamp is None
    ]


@pytest.mark.parametrize(
    "extra",
    [{}, {"coder_templates_coder_internal_url": "http://coder.coder.svc.cluster.local"}],
    ids=["access-url-with-exported-ca", "in-cluster-url"],
)
def test_probe_passes_on_the_real_setup(converged, kube, extra):
    extra = {"coderstack_workspace_image": workspace_image(kube), **extra}
    res = run_playbook(PROBE, extra_vars=extra, timeout=600)
    assert res.rc == 0, res.output[-3000:]
    pods = probe_pods(kube)
    assert len(pods) == 1 and pods[0][1], pods  # one probe pod, Ready: its last check passed
    again = run_playbook(PROBE, extra_vars=extra, timeout=600)
    assert again.rc == 0, again.output[-3000:]
    assert again.changed == 0  # the re-run read the verdict of the running probe
    assert probe_pods(kube) == pods  # the same pod: nothing was replaced


@pytest.mark.parametrize(
    "extra,problem",
    [
        ({"coder_templates_ca_configmap": ""}, "PROBLEM: TLS: the certificate of https://coder.testbed.local"),
        ({"coder_templates_agent_url": "https://nowhere.testbed.invalid"}, "PROBLEM: DNS: the host of"),
        ({"coder_templates_agent_url": "http://coder.coder.svc.cluster.local:9"}, "PROBLEM: no connection to"),
        # a destination the policies let through stands for a cluster that enforces none: the probe reaching what
        # it must not is reported (the default, the API server, is refused on the testbed: the passing runs above)
        (
            {"coder_templates_probe_denied_url": "https://coder.testbed.local"},
            "PROBLEM: NetworkPolicies are not enforced: a pod in the workspace namespace connected to"
            " https://coder.testbed.local",
        ),
    ],
    ids=["no-ca", "unresolvable-url", "closed-port", "policies-not-enforced"],
)
def test_broken_ca_or_url_fails_naming_the_url_and_cause(converged, kube, extra, problem):
    res = run_playbook(PROBE, extra_vars={"coderstack_workspace_image": workspace_image(kube), **extra}, timeout=600)
    assert res.rc != 0
    out = res.output
    assert "Workspace agents could not fetch their binary from" in out
    assert problem in out, out[-3000:]
    pods = probe_pods(kube)
    assert len(pods) == 1 and not pods[0][1], pods  # the failing probe is left for inspection (kubectl describe)
