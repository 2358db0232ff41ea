# Copyright: coderstack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Tests of the validation vocabulary the roles share: `value is coderstack.platform.k8s_quantity`.

One definition of what Kubernetes accepts, so that every role refuses the same values with its own message (the
variable named) before anything changes. Values come as the command line gives them too (`-e size=10Gi`, `-e pods=5`:
strings), so a value is tested as its string form.
"""

from __future__ import annotations

import re

DOCUMENTATION = r"""
name: k8s_quantity
short_description: whether a value is a Kubernetes resource quantity
description:
  - True for what the Kubernetes API accepts as a quantity (C(resource.Quantity)) and an operator would write, such as
    C(250m), C(2), C(1.5), C(512Mi), C(10Gi), C(1e3); integers and their strings alike (a C(-e key=value) gives
    strings). Negative values, booleans, units Kubernetes does not know (C(GB), C(gi)) and empty values are not.
options:
  _input:
    description: The value.
    type: raw
    required: true
"""

EXAMPLES = r"""
- ansible.builtin.assert:
    that: postgres_storage_size is coderstack.platform.k8s_quantity
    fail_msg: postgres_storage_size {{ postgres_storage_size | to_json }} is not a quantity such as 10Gi
"""

RETURN = r"""
_value:
  description: Whether the value is a quantity.
  type: bool
"""

# resource.Quantity's serialization: a non-negative decimal, then a binary-SI, decimal-SI or exponent suffix
_QUANTITY = re.compile(r"^\+?([0-9]+(\.[0-9]*)?|\.[0-9]+)([KMGTPE]i|[numkMGTPE]|[eE][-+]?[0-9]+)?$")


def k8s_quantity(value) -> bool:
    if isinstance(value, bool) or value is None:
        return False
    if isinstance(value, (int, float)):
        return value >= 0
    return isinstance(value, str) and _QUANTITY.match(value) is not None


class TestModule:
    def tests(self):
        return {"k8s_quantity": k8s_quantity}
