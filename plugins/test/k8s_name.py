# Copyright: coderstack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The validation vocabulary's object names: `value is coderstack.platform.k8s_name`, what Kubernetes accepts as the
name of a Secret, ConfigMap, PriorityClass and most other objects (a DNS-1123 subdomain). One definition instead of a
regular expression copied into each role (the copies disagreed: they let `a..b` through, which the API refuses)."""

from __future__ import annotations

import re

DOCUMENTATION = r"""
name: k8s_name
short_description: whether a value is a Kubernetes object name (a DNS-1123 subdomain)
description:
  - True for what the Kubernetes API accepts as the name of a Secret, ConfigMap, PriorityClass, StorageClass and most
    other objects (C(IsDNS1123Subdomain)) - at most 253 characters, lowercase letters, digits, C(-) and C(.), each
    dot-separated part starting and ending with a letter or digit. Empty values, uppercase, C(_), C(a..b) and
    non-strings are not.
options:
  _input:
    description: The value.
    type: raw
    required: true
"""

EXAMPLES = r"""
- ansible.builtin.assert:
    that: postgres_url_secret_name is coderstack.platform.k8s_name
    fail_msg: postgres_url_secret_name {{ postgres_url_secret_name | to_json }} is not a Secret name
"""

RETURN = r"""
_value:
  description: Whether the value is an object name.
  type: bool
"""

# one dot-separated part of a DNS-1123 subdomain (Kubernetes' dns1123LabelFmt, without the label's 63 limit)
_PART = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def k8s_name(value) -> bool:
    if not isinstance(value, str) or not 0 < len(value) <= 253:
        return False
    return all(_PART.match(part) for part in value.split("."))


class TestModule:
    def tests(self):
        return {"k8s_name": k8s_name}
