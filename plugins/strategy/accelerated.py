# -*- coding: utf-8 -*-
# Copyright: coderstack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Strategy coderstack.platform.accelerated: Ansible's linear strategy, run through Mitogen when it is installed."""

from __future__ import annotations

DOCUMENTATION = r"""
name: accelerated
short_description: The linear strategy, with Mitogen's persistent module runner when it is installed
description:
  - Runs plays exactly as the C(linear) strategy does (task by task, every host), but, when the C(mitogen) Python
    package is installed on the controller, through Mitogen's C(mitogen_linear). Modules then run in a persistent
    Python interpreter instead of a new process per task, so the kubernetes client is imported and its API discovery
    done once per run instead of once per task.
  - Without C(mitogen), or with the environment variable C(CODERSTACK_MITOGEN=0), it is the plain C(linear) strategy.
  - coderstack's C(ansible.cfg) selects it; nothing else changes for the playbooks.
author:
  - coderstack maintainers (@coderstack)
"""

import os

from ansible.plugins.loader import strategy_loader
from ansible.utils.display import Display

_display = Display()


def _mitogen_mixin():
    """Mitogen's strategy mixin, or None when Mitogen is not wanted or not installed."""
    if os.environ.get("CODERSTACK_MITOGEN", "1").lower() in ("0", "false", "no", "off"):
        return None
    try:
        import ansible_mitogen.loaders  # patches the plugin loaders first
        import ansible_mitogen.strategy
    except ImportError:
        _display.vvv("coderstack.platform.accelerated: mitogen is not installed, running as linear")
        return None
    return ansible_mitogen.strategy.StrategyMixin


_Linear = strategy_loader.get("linear", class_only=True)
_Mixin = _mitogen_mixin()

if _Mixin is None:

    class StrategyModule(_Linear):
        pass

else:

    class StrategyModule(_Mixin, _Linear):
        pass
