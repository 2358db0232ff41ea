"""Make the project's module_utils importable as ``ansible.module_utils.<name>`` (as Ansible does at run time)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import ansible.module_utils

MU = Path(__file__).resolve().parents[3] / "plugins" / "module_utils"


def load(name: str):
    full = f"ansible.module_utils.{name}"
    if full in sys.modules:
        return sys.modules[full]
    spec = importlib.util.spec_from_file_location(full, MU / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[full] = mod
    setattr(ansible.module_utils, name, mod)
    spec.loader.exec_module(mod)
    return mod


load("coder_client")
load("coder_common")
load("coder_templates")
load("coder_workspaces")
