"""What the testbed may change on the host, as one comparable snapshot.

`python tests/helpers/hoststate.py FILE` writes the snapshot; scripts/test.sh takes one before the first
testbed/up.sh and tests/integration/hoststate compares it with the host after the last testbed/down.sh.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SYSCTLS = ("net.ipv4.ip_forward", "vm.overcommit_memory", "kernel.panic", "kernel.panic_on_oops")
CGROUP_ROOT = Path("/sys/fs/cgroup")


def _lines(*cmd: str) -> list[str]:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    return [line for line in proc.stdout.splitlines() if line.strip()]


# podman's own network (its CNI bridge, made the first time a test publishes a port) is not the testbed's; the CNI
# plugins share chain names (CNI-HOSTPORT-*, CNI-FORWARD ...) between podman and the real node, so those chains are
# compared by what their rules point at instead: nothing may still name the testbed's bridge or addresses.
PODMAN = ("cni-podman",)
TESTBED_MARKS = ("cstb0", "10.85.0.", "coderstack-testbed", "CODERSTACK")


def _chains(tool: str) -> dict[str, int]:
    """iptables chain -> number of rules, every table (counters and policies left out), CNI's shared chains aside."""
    out: dict[str, int] = {}
    for table in ("filter", "nat", "mangle", "raw"):
        for line in _lines(tool, "-w", "-t", table, "-S"):
            if not line.startswith(("-N ", "-P ", "-A ")):
                continue
            chain = line.split()[1]
            if chain.startswith("CNI-") or "-j CNI-" in line:
                continue
            key = f"{table}/{chain}"
            out[key] = out.get(key, 0) + (1 if line.startswith("-A ") else 0)
    return out


def _testbed_rules(tool: str) -> list[str]:
    return [
        line
        for table in ("filter", "nat", "mangle", "raw")
        for line in _lines(tool, "-w", "-t", table, "-S")
        if any(mark in line for mark in TESTBED_MARKS)
    ]


def _not_podman(lines: list[str]) -> list[str]:
    return sorted(line for line in lines if not any(p in line for p in PODMAN))


def snapshot() -> dict:
    return {
        # veths come and go with containers (podman's too): the testbed's would show as bridge members and routes
        "links": _not_podman(
            [line.split()[0].split("@")[0] for line in _lines("ip", "-br", "link") if not line.startswith("veth")]
        ),
        "addresses": _not_podman([line for line in _lines("ip", "-br", "addr") if not line.startswith("veth")]),
        "routes": _not_podman(_lines("ip", "route", "show", "table", "all")),
        "iptables": _chains("iptables"),
        "ip6tables": _chains("ip6tables"),
        "rules_naming_the_testbed": _testbed_rules("iptables") + _testbed_rules("ip6tables"),
        # the NetworkPolicy enforcer's (kube-router) ipsets
        "ipsets": sorted(_lines("ipset", "list", "-n")),
        # podman's own storage mounts (image builds use podman, as a user on the host would) are not the testbed's
        "mounts": sorted(
            {
                m
                for m in (line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines())
                if not m.startswith(("/var/lib/containers/", "/run/containers/"))
            }
        ),
        "etc_hosts": Path("/etc/hosts").read_text().splitlines(),
        "sysctls": {k: Path("/proc/sys", *k.split(".")).read_text().strip() for k in SYSCTLS},
        "kubepods_cgroups": sorted(str(p) for p in CGROUP_ROOT.glob("*/kubepods")),
        "paths": sorted(p for p in ("/run/containerd", "/var/lib/cni", "/run/netns") if Path(p).exists()),
        "processes": sorted(
            {
                name
                for name in (line.strip() for line in _lines("ps", "-eo", "comm")[1:])
                if name in {"containerd", "containerd-shim", "containerd-shim-runc-v2", "kubelet", "kube-proxy"}
            }
        ),
    }


if __name__ == "__main__":
    Path(sys.argv[1]).write_text(json.dumps(snapshot(), indent=1, sort_keys=True))
