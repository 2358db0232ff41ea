"""Changes of Coder's version on the testbed's platform, through the coder role (playbooks/upgrade.yml,
playbooks/rollback.yml, playbooks/restore.yml).

The role reads the running version from the Deployment's image tag. The testbed builds one Coder, the pinned
version; the next patch version is stood for by the same image under the next tag (its manifest put under a second
tag in the testbed's registry), so the role sees, and acts on, a real change of version: the dump comes before the
rollout, going back is refused, a further version whose pods cannot start fails the run while the running pod keeps
serving, and the rollback restores the first dump before the pinned version starts again. Coder's own migrations
between releases are not exercised by this (the binary is the same under every tag).
"""

from __future__ import annotations

import re
import uuid

import pytest
import requests
from helpers.parts import REPO

MANIFESTS = ", ".join(
    [
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)
PINNED = re.search(r'^coder_chart_version: "(.*)"$', (REPO / "roles/coder/defaults/main.yml").read_text(), re.M)[1]
_maj, _min, _patch = PINNED.split(".")
NEXT = f"{_maj}.{_min}.{int(_patch) + 1}"
AFTER_NEXT = f"{_maj}.{_min}.{int(_patch) + 2}"


def _registry(testbed):
    base = f"https://{testbed.read('registry-url')}/v2/coderstack-testbed/coder"
    return base, (testbed.read("registry/username"), testbed.read("registry/password")), testbed.read("registry-ca")


@pytest.fixture()
def next_tag(testbed):
    """The pinned image's manifest, also under the next two patch versions' tags; the first is returned."""
    base, auth, ca = _registry(testbed)
    got = requests.get(f"{base}/manifests/v{PINNED}", headers={"Accept": MANIFESTS}, auth=auth, verify=ca, timeout=30)
    got.raise_for_status()
    for version in (NEXT, AFTER_NEXT):
        put = requests.put(
            f"{base}/manifests/v{version}",
            data=got.content,
            headers={"Content-Type": got.headers["Content-Type"]},
            auth=auth,
            verify=ca,
            timeout=30,
        )
        assert put.status_code == 201, put.text
    return f"v{NEXT}"


def _deployment(kube):
    from kubernetes import client

    return client.AppsV1Api(kube).read_namespaced_deployment("coder", "coder")


def _image_tag(deploy) -> str:
    image = next(c.image for c in deploy.spec.template.spec.containers if c.name == "coder")
    return re.search(r":(v[0-9.]+)(?:@|$)", image)[1]


def _backup_jobs(kube) -> dict:
    from kubernetes import client

    jobs = client.BatchV1Api(kube).list_namespaced_job("coder").items
    return {j.metadata.name: j for j in jobs if j.metadata.name.startswith("coder-db-backup-")}


def _usernames(testbed, kube) -> set[str]:
    return {u["username"] for u in testbed.coder(kube, "/api/v2/users")["users"]}


def _add_user(testbed, kube, name: str) -> None:
    org = testbed.coder(kube, "/api/v2/users/me")["organization_ids"][0]
    body = {"username": name, "email": f"{name}@example.com", "login_type": "github", "organization_ids": [org]}
    testbed.coder(kube, "/api/v2/users", method="POST", json=body)


def test_upgrade_dumps_first_downgrade_is_refused_rollback_restores_before_starting(
    converged, testbed, kube, playbook, next_tag
):
    from kubernetes import client

    tag = uuid.uuid4().hex[:6]
    before, after = f"before-{tag}", f"after-{tag}"
    _add_user(testbed, kube, before)
    jobs_before = _backup_jobs(kube)
    assert _image_tag(_deployment(kube)) == f"v{PINNED}"

    # upgrade: a dump first (a Job: postgres_backup_mode auto picks it for the in-cluster database), then the rollout
    res = playbook("playbooks/upgrade.yml", extra_vars={"coder_image_tag": next_tag})
    assert res.rc == 0, res.output[-4000:]
    new_jobs = {n: j for n, j in _backup_jobs(kube).items() if n not in jobs_before}
    assert len(new_jobs) == 1, sorted(new_jobs)
    job = next(iter(new_jobs.values()))
    deploy = _deployment(kube)
    assert _image_tag(deploy) == next_tag
    dump = next(e.value for e in job.spec.template.spec.containers[0].env if e.name == "DUMP")
    pods = [
        p
        for p in client.CoreV1Api(kube).list_namespaced_pod("coder").items
        if any(c.image.split("@")[0].endswith(":" + next_tag) for c in p.spec.containers)
    ]
    assert pods and all(job.status.completion_time <= p.metadata.creation_timestamp for p in pods), (
        "the new version's pod started before the dump was complete"
    )
    assert before in _usernames(testbed, kube)
    _add_user(testbed, kube, after)

    # going back to the pinned version is refused before anything changes (positive control: the upgrade above)
    generation = deploy.metadata.generation
    jobs_now = set(_backup_jobs(kube))
    res = playbook("playbooks/upgrade.yml")
    assert res.rc != 0
    assert f"coder_chart_version {PINNED} is older than the Coder running in coder/coder ({NEXT})" in res.output
    assert "playbooks/rollback.yml" in res.output and "Nothing was changed." in res.output
    assert _deployment(kube).metadata.generation == generation
    assert set(_backup_jobs(kube)) == jobs_now

    # a newer version whose pods cannot start (a setting it refuses): the wait fails, naming the rollback and the dump
    # it took first, and the running version's pod never stops serving
    serving = {
        p.metadata.name
        for p in client.CoreV1Api(kube).list_namespaced_pod("coder").items
        if "db" not in p.metadata.name
    }
    broken = {"name": "CODER_MAX_TOKEN_LIFETIME", "value": "not-a-duration"}
    ev = {"coder_image_tag": f"v{AFTER_NEXT}", "coder_extra_env": [broken], "coder_wait_timeout": 30}
    res = playbook("playbooks/upgrade.yml", extra_vars=ev)
    assert res.rc != 0
    out = res.output
    assert f"This run upgrades Coder from {NEXT} to {AFTER_NEXT}" in out, out[-4000:]
    assert f"playbooks/rollback.yml -e coder_chart_version={NEXT} -e postgres_backup_file=coder-" in out
    assert testbed.coder(kube, "/api/v2/buildinfo")["version"] == f"v{PINNED}"  # the same binary under both tags
    still = {p.metadata.name for p in client.CoreV1Api(kube).list_namespaced_pod("coder").items}
    assert serving <= still, "the running version's pod was stopped"

    # the rollback to before the first upgrade: Coder stopped, its dump restored, then the pinned version starts on
    # the restored data
    res = playbook("playbooks/rollback.yml", extra_vars={"postgres_backup_file": dump})
    assert res.rc == 0, res.output[-4000:]
    out = res.output
    assert (
        out.index("Coder is scaled to 0")
        < out.index("The Job is applied | restore")
        < out.index("Coder Helm release is deployed")
    )
    assert _image_tag(_deployment(kube)) == f"v{PINNED}"
    names = _usernames(testbed, kube)
    assert before in names and after not in names, "Coder does not serve the restored data"

    # a restore into the running platform (restore.yml): Coder is stopped, the dump restored, Coder serves it again
    _add_user(testbed, kube, after)
    res = playbook("playbooks/restore.yml", extra_vars={"postgres_backup_file": dump})
    assert res.rc == 0, res.output[-4000:]
    names = _usernames(testbed, kube)
    assert before in names and after not in names
    assert _deployment(kube).spec.replicas == 1

    res = playbook("playbooks/coder.yml")
    assert res.rc == 0 and res.changed == 0, res.output[-4000:]
