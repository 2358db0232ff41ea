"""Workspaces use the base image by the registry's digest (base_image_pin_digest): the agent probe, which runs the
very image the templates get (coderstack_workspace_image), references <registry>/<repository>@sha256:..., its pod
pulled and runs it, and that digest is what the registry serves for the role's tag right now."""

from __future__ import annotations

import re

import requests

DIGEST_REF = re.compile(r"^(?P<registry>[^/]+)/(?P<repository>.+)@(?P<digest>sha256:[0-9a-f]{64})$")
MANIFESTS = ", ".join(
    [
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    ]
)


def test_workspaces_use_the_image_by_the_registrys_digest(testbed, kube, playbook):
    from kubernetes import client

    # the inventory's state first: earlier tests may have run the templates role without its probe
    res = playbook("site.yml")
    assert res.rc == 0, res.output[-3000:]
    deploy = client.AppsV1Api(kube).read_namespaced_deployment("coderstack-agent-probe", "coder-workspaces")
    image = deploy.spec.template.spec.containers[0].image
    m = DIGEST_REF.match(image)
    assert m, f"the workspace image is not referenced by digest: {image}"
    pods = (
        client.CoreV1Api(kube)
        .list_namespaced_pod("coder-workspaces", label_selector="app.kubernetes.io/name=coderstack-agent-probe")
        .items
    )
    ready = [
        p
        for p in pods
        if p.spec.containers[0].image == image
        and any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])
    ]
    assert ready, "the probe's pod did not pull and run the image by its digest"

    registry = f"https://{m['registry']}/v2/{m['repository']}"
    auth = (testbed.read("registry/username"), testbed.read("registry/password"))
    ca = testbed.read("registry-ca")
    head = {"Accept": MANIFESTS}
    # the digest is the registry's: its manifest is served by digest ...
    r = requests.head(f"{registry}/manifests/{m['digest']}", headers=head, auth=auth, verify=ca, timeout=10)
    assert r.status_code == 200, r.status_code
    # ... and a tag of the repository points at it now (the tag the base_image role computed)
    tags = requests.get(f"{registry}/tags/list", auth=auth, verify=ca, timeout=10).json()["tags"]
    digests = {
        t: requests.head(f"{registry}/manifests/{t}", headers=head, auth=auth, verify=ca, timeout=10).headers.get(
            "Docker-Content-Digest"
        )
        for t in tags
    }
    assert m["digest"] in digests.values(), digests
    # control: a digest the registry does not have is refused by the same request
    other = "sha256:" + ("0" * 64)
    r = requests.head(f"{registry}/manifests/{other}", headers=head, auth=auth, verify=ca, timeout=10)
    assert r.status_code == 404, r.status_code
