"""The strategy coderstack.platform.accelerated (ansible.cfg): Mitogen's linear strategy when mitogen is installed,
plain linear with CODERSTACK_MITOGEN=0."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

COLLECTIONS = str(Path(__file__).resolve().parents[3] / "collections")

MRO = (
    "from ansible_collections.coderstack.platform.plugins.strategy import accelerated;"
    "print(' '.join(c.__module__ for c in accelerated.StrategyModule.__mro__))"
)


def _mro(**env) -> str:
    e = dict(os.environ, PYTHONPATH=COLLECTIONS, **env)
    out = subprocess.run([sys.executable, "-c", MRO], env=e, capture_output=True, text=True, check=True)
    return out.stdout


def test_with_mitogen_the_strategy_is_mitogens_linear():
    pytest.importorskip("ansible_mitogen")
    mro = _mro(CODERSTACK_MITOGEN="1")
    assert "ansible_mitogen.strategy" in mro
    assert "ansible.plugins.strategy.linear" in mro


def test_switched_off_it_is_plain_linear():
    mro = _mro(CODERSTACK_MITOGEN="0")
    assert "ansible_mitogen" not in mro
    assert "ansible.plugins.strategy.linear" in mro
