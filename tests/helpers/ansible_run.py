"""Run ansible-playbook from tests and read its recap."""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RECAP = re.compile(
    r"^(?P<host>\S+)\s+:\s+ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)"
    r"\s+failed=(?P<failed>\d+)\s+skipped=(?P<skipped>\d+)",
    re.M,
)


@dataclass
class PlaybookResult:
    rc: int
    stdout: str
    stderr: str
    recap: dict = field(default_factory=dict)

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    @property
    def changed(self) -> int:
        return sum(h["changed"] for h in self.recap.values())

    @property
    def failed(self) -> int:
        return sum(h["failed"] + h["unreachable"] for h in self.recap.values())


def run_playbook(
    playbook: str | Path,
    inventory: str | Path = "inventories/testbed",
    extra_vars: dict | None = None,
    args: list[str] | None = None,
    env: dict | None = None,
    timeout: int = 900,
    lane: bool = False,
) -> PlaybookResult:
    """Run a playbook of this repo against an inventory; extra_vars are passed as JSON. With lane, in the
    current-Ansible lane (scripts/lane.sh: ansible-core 2.21) on plain `linear`: Mitogen's two settings are dropped, so
    no third-party strategy runs."""
    cmd = [*(["bash", "scripts/lane.sh"] if lane else []), "ansible-playbook", str(playbook), "-i", str(inventory)]
    if extra_vars:
        cmd += ["-e", json.dumps(extra_vars)]
    cmd += args or []
    run_env = dict(os.environ)
    run_env.setdefault("ANSIBLE_CONFIG", str(REPO / "ansible.cfg"))
    run_env["PATH"] = f"{REPO / '.venv/bin'}:{REPO / '.testbed/bin'}:{run_env.get('PATH', '')}"
    run_env["ANSIBLE_NOCOLOR"] = "1"
    run_env["ANSIBLE_FORCE_COLOR"] = "0"
    run_env.update(env or {})
    if lane:
        for name in ("ANSIBLE_STRATEGY", "ANSIBLE_STRATEGY_PLUGINS"):
            run_env.pop(name, None)
    proc = subprocess.run(cmd, cwd=REPO, env=run_env, capture_output=True, text=True, timeout=timeout, check=False)
    recap = {
        m["host"]: {k: int(v) for k, v in m.groupdict().items() if k != "host"} for m in RECAP.finditer(proc.stdout)
    }
    return PlaybookResult(proc.returncode, proc.stdout, proc.stderr, recap)
