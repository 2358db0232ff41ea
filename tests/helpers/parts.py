"""Where the repository and the testbed state are, and the rule for missing real parts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
STATE = Path(os.environ.get("CODERSTACK_TESTBED_DIR", REPO / ".testbed"))


def need(condition: bool, reason: str) -> None:
    """Skip (developer machine) or fail (CI=true) when a real part is missing."""
    if condition:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"required part missing in CI: {reason}")
    pytest.skip(reason)


def lane_ready() -> bool:
    """The current-Ansible lane is set up (scripts/lane.sh --setup wrote its root's and its venv's stamps last)."""
    root = Path(os.environ.get("CODERSTACK_CACHE", Path.home() / ".cache/coderstack")) / "lanes/trixie"
    return (root / ".coderstack-lane").exists() and (root / "opt/coderstack-venv/.requirements.sha256").exists()
