"""The coder role's version guard (roles/coder/tasks/version.yml), on the versions a Deployment can carry: what runs is
read from the image tag (pinned by digest or not) or the chart's version label, and an older target or a path Coder's
upgrade notes name as unsafe is refused with the version to go through. The Deployment read is given as the role's
read would return it, so every case runs in seconds without touching the cluster (the testbed inventory gives the
role its settings); the refusal on the real platform (nothing changed, no dump) is in
tests/integration/backup/test_upgrade_rollback.py."""

from __future__ import annotations

import pytest

PLAY = """
- hosts: coderstack
  gather_facts: false
  tasks:
    - ansible.builtin.include_role:
        name: coderstack.platform.coder
        tasks_from: version.yml
    - ansible.builtin.debug:
        msg: "VERSIONS {{ __coder_version_from }} -> {{ __coder_version_to }}"
"""


def _deploy(image: str | None = None, label: str | None = None) -> dict:
    if image is None and label is None:
        return {"objects": {"deployment": {"resources": []}}}
    d = {
        "metadata": {"labels": {"app.kubernetes.io/version": label} if label else {}},
        "spec": {"template": {"spec": {"containers": [{"name": "coder", "image": image or "ghcr.io/coder/coder"}]}}},
    }
    return {"objects": {"deployment": {"resources": [d]}}}


def _run(playbook, tmp_path, reads: dict, **extra):
    play = tmp_path / "guard.yml"
    play.write_text(PLAY)
    ev = {"coder_reads": reads, "coder_namespace": "coder", **extra}
    return playbook(play, extra_vars=ev)


@pytest.mark.parametrize(
    ("reads", "target", "seen"),
    [
        (_deploy(), "2.36.1", "VERSIONS  -> 2.36.1"),  # a first install
        (_deploy("reg:5000/coder:v2.30.0@sha256:" + "a" * 64), "2.36.1", "VERSIONS 2.30.0 -> 2.36.1"),
        (_deploy(label="2.14.2"), "2.36.1", "VERSIONS 2.14.2 -> 2.36.1"),  # tag-less image: the chart's label
        (_deploy("ghcr.io/coder/coder:v2.36.1"), "2.36.1", "VERSIONS 2.36.1 -> 2.36.1"),
        (_deploy("ghcr.io/coder/coder:v2.26.6"), "2.27.8", "VERSIONS 2.26.6 -> 2.27.8"),  # through the stepping stone
        (_deploy("ghcr.io/coder/coder:v2.26.3"), "2.26.6", "VERSIONS 2.26.3 -> 2.26.6"),  # to the stepping stone
    ],
)
def test_allowed_changes_pass_and_name_both_versions(playbook, tmp_path, reads, target, seen):
    res = _run(playbook, tmp_path, reads, coder_chart_version=target)
    assert res.rc == 0, res.output[-3000:]
    assert seen in res.output


def test_an_older_version_is_refused_naming_both_and_the_rollback(playbook, tmp_path):
    res = _run(playbook, tmp_path, _deploy("reg/coder:v2.36.1"), coder_chart_version="2.30.0")
    assert res.rc != 0
    assert "coder_chart_version 2.30.0 is older than the Coder running in coder/coder (2.36.1)" in res.output
    assert "playbooks/rollback.yml" in res.output and "Nothing was changed." in res.output
    # the rollback, once it has restored the dump, may start the older version
    res = _run(
        playbook, tmp_path, _deploy("reg/coder:v2.36.1"), coder_chart_version="2.30.0", coder_rollback_restored=True
    )
    assert res.rc == 0 and "VERSIONS 2.36.1 -> 2.30.0" in res.output, res.output[-3000:]


def test_a_path_coder_names_unsafe_is_refused_with_the_version_to_go_through(playbook, tmp_path):
    res = _run(playbook, tmp_path, _deploy("reg/coder:v2.26.0"), coder_chart_version="2.27.8")
    assert res.rc != 0
    assert "upgrading Coder from 2.26.0 to 2.27.8 is a path Coder names as unsafe" in res.output
    assert "upgrade to 2.26.6 first (-e coder_chart_version=2.26.6)" in res.output


def test_the_image_tag_override_is_the_target(playbook, tmp_path):
    res = _run(
        playbook, tmp_path, _deploy("reg/coder:v2.36.1"), coder_chart_version="2.36.1", coder_image_tag="v2.36.2"
    )
    assert res.rc == 0 and "VERSIONS 2.36.1 -> 2.36.2" in res.output, res.output[-3000:]
