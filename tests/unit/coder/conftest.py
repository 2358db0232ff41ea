"""Unit tests of the Coder module_utils: loads them as ansible.module_utils.* (see coder_mu.py)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import coder_mu  # noqa: F401 - registers ansible.module_utils.coder_*
