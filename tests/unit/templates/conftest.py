"""Unit tests of coder_templates (module_utils), loaded as ansible.module_utils.* like Ansible does."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "coder"))
from coder_mu import load

load("coder_client")
load("coder_common")
load("coder_templates")
