"""testbed/down.sh leaves the host as testbed/up.sh found it.

scripts/test.sh snapshots the host (tests/helpers/hoststate.py) before its first testbed/up.sh and runs this test
after its last testbed/down.sh, with CODERSTACK_HOST_SNAPSHOT naming the snapshot. Interfaces, addresses, routes,
iptables chains and their rule counts (v4 and v6, every table), mounts, /etc/hosts, the sysctls a node changes,
kubepods cgroups, containerd/CNI paths and node processes must all be as they were.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from helpers.hoststate import snapshot
from helpers.parts import need


def test_down_restores_the_host():
    path = os.environ.get("CODERSTACK_HOST_SNAPSHOT", "")
    need(bool(path) and Path(path).exists(), "no host snapshot from before testbed/up.sh (scripts/test.sh takes it)")
    before = json.loads(Path(path).read_text())
    after = snapshot()
    diff = {k: {"before": before[k], "after": after[k]} for k in before if before[k] != after.get(k)}
    assert not diff, "testbed/down.sh left the host changed:\n" + json.dumps(diff, indent=1)
