"""Run one of our modules the way Ansible does (`ansible localhost -m`) and return its result."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

from helpers.parts import REPO


def run_module(module: str, args: dict, check: bool = False, diff: bool = True, timeout: int = 900) -> dict:
    """Run MODULE with ARGS against inventories/testbed; the JSON result of the one task."""
    ansible = REPO / ".venv/bin/ansible"
    cmd = [
        str(ansible) if ansible.exists() else (shutil.which("ansible") or str(ansible)),  # a worktree has no .venv
        "localhost",
        "-i",
        "inventories/testbed",
        "-m",
        module,
        "-a",
        json.dumps(args),
    ]
    if check:
        cmd.append("--check")
    if diff:
        cmd.append("--diff")
    env = dict(os.environ)
    env.update(
        ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
        ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
        ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json",
        ANSIBLE_NOCOLOR="1",
    )
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    try:
        out = json.loads(proc.stdout[proc.stdout.index("{") :])
    except ValueError as e:
        raise AssertionError(f"no JSON from ansible ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}") from e
    return out["plays"][0]["tasks"][0]["hosts"]["localhost"]
