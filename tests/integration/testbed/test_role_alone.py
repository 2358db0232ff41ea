"""A role used on its own, in a play of the user's that sets no module_defaults, talks to the inventory's cluster
(coderstack_kubeconfig and coderstack_context, through the block every role's tasks/main.yml opens), not to
whatever KUBECONFIG or ~/.kube/config point at."""

from __future__ import annotations

import yaml
from helpers.ansible_run import run_playbook


def test_a_role_run_alone_uses_the_inventorys_cluster(converged, tmp_path):
    play = tmp_path / "alone.yml"
    play.write_text(
        yaml.safe_dump(
            [
                {
                    "name": "storage alone",
                    "hosts": "coderstack",
                    "gather_facts": False,
                    "roles": ["coderstack.platform.storage"],
                }
            ]
        )
    )
    elsewhere = {"KUBECONFIG": str(tmp_path / "no-such-kubeconfig")}
    res = run_playbook(play, env=elsewhere)
    assert res.rc == 0 and res.changed == 0, res.output[-3000:]
    # control: the same play with the inventory's kubeconfig pointed at that file fails, naming it
    res = run_playbook(play, extra_vars={"coderstack_kubeconfig": elsewhere["KUBECONFIG"]}, env=elsewhere)
    assert res.rc != 0 and "no-such-kubeconfig" in res.output, res.output[-3000:]
