# Copyright: coderstack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The validation vocabulary's short names: `value is coderstack.platform.k8s_dns_label`, what Kubernetes accepts as
a namespace or Service name (a DNS-1123 label)."""

from __future__ import annotations

import re

DOCUMENTATION = r"""
name: k8s_dns_label
short_description: whether a value is a Kubernetes namespace or Service name (a DNS-1123 label)
description:
  - True for what the Kubernetes API accepts as a namespace or Service name (C(IsDNS1123Label)) - at most 63
    characters, lowercase letters, digits and C(-), starting and ending with a letter or digit. Dots, uppercase, C(_),
    empty values and non-strings are not.
options:
  _input:
    description: The value.
    type: raw
    required: true
"""

EXAMPLES = r"""
- ansible.builtin.assert:
    that: coderstack_namespace is coderstack.platform.k8s_dns_label
    fail_msg: coderstack_namespace {{ coderstack_namespace | to_json }} is not a namespace name
"""

RETURN = r"""
_value:
  description: Whether the value is a DNS-1123 label.
  type: bool
"""

_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def k8s_dns_label(value) -> bool:
    return isinstance(value, str) and _LABEL.match(value) is not None


class TestModule:
    def tests(self):
        return {"k8s_dns_label": k8s_dns_label}
