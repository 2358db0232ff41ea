#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: coderstack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation of the action plugin coderstack.platform.role_inputs (plugins/action/role_inputs.py)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: role_inputs
short_description: Check the inventory's values against every role's argument spec and validate step, in one task
description:
  - Reads each role of O(roles_dir) that has a C(meta/argument_specs.yml) and checks its inputs on the controller,
    without a module run and without changing anything.
  - When O(check_unknown_variables) is true, a variable named like a role's (C(<role>_...)) that no role declares is
    refused (a misspelling).
  - A variable that a spec types C(bool) and that was passed as a string (C(-e name=no)) is refused.
  - Each role's spec is checked against the values the inventory or C(-e) sets (the defaults are right by
    construction).
  - Each role's C(tasks/validate.yml) is evaluated when it holds asserts only (task keys C(name), C(vars), C(when),
    C(loop), C(loop_control) and C(ansible.builtin.assert)), as the role would, with the run's variables over the
    role's vars, defaults and its dependencies' defaults.
  - A validate step with other tasks is not evaluated. It is returned in RV(include_roles), for the caller to run as
    tasks (C(include_role) with C(tasks_from=validate)).
  - Every refusal is reported, not only the first; the task fails when there is one.
  - Runs on the controller (an action plugin); check mode does the same.
version_added: 0.1.0
options:
  roles_dir:
    description: Directory of the roles (the collection's C(roles/)).
    type: path
    required: true
  roles:
    description: Roles to check; empty checks every role with a C(meta/argument_specs.yml).
    type: list
    elements: str
    default: []
  exclude:
    description: Roles not to check (the calling role itself).
    type: list
    elements: str
    default: []
  check_unknown_variables:
    description: Refuse variables named like a role's that no role declares.
    type: bool
    default: true
author:
  - coderstack maintainers (@coderstack)
"""

EXAMPLES = r"""
- name: Every role accepts the inventory's values
  coderstack.platform.role_inputs:
    roles_dir: "{{ role_path | dirname }}"
    exclude: [preflight]
  register: inputs

- name: Validate steps with other tasks than asserts run as tasks
  ansible.builtin.include_role:
    name: "coderstack.platform.{{ item }}"
    tasks_from: validate
  loop: "{{ inputs.include_roles }}"
"""

RETURN = r"""
roles_checked:
  description: The roles whose inputs were checked.
  type: list
  elements: str
  returned: always
roles_validated:
  description: The roles whose validate step this task evaluated.
  type: list
  elements: str
  returned: always
include_roles:
  description: The roles whose validate step has other tasks than asserts, left for the caller to run.
  type: list
  elements: str
  returned: always
problems:
  description: One line per refusal, naming the role, the rule and the variable.
  type: list
  elements: str
  returned: failed
"""
