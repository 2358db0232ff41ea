# -*- coding: utf-8 -*-
# Copyright: coderstack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action coderstack.platform.role_inputs: every role's inputs checked in one task, on the controller.

The preflight used to run one task per check (a role's argument spec, each assert of its tasks/validate.yml): ~50 tasks,
each a worker process. This action reads the same files and evaluates the same rules in its own process. A validate
step it cannot evaluate (a task other than ansible.builtin.assert) is returned in `include_roles`, for the caller to
run as tasks (include_role tasks_from validate), so no rule is ever skipped.
"""

from __future__ import annotations

import collections
import os
import re

from ansible.errors import AnsibleError
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.plugins.action import ActionBase

# the keys an assert task of a validate step may have for this action to evaluate it (anything else: run as tasks)
_ASSERT_NAMES = ("ansible.builtin.assert", "assert")
_TASK_KEYS = frozenset(("name", "vars", "when", "loop", "loop_control", *_ASSERT_NAMES))
_ARGUMENT_SPEC = {
    "roles_dir": {"type": "path", "required": True},
    "roles": {"type": "list", "elements": "str", "default": []},
    "exclude": {"type": "list", "elements": "str", "default": []},
    "check_unknown_variables": {"type": "bool", "default": True},
}


class _Role:
    """One role's files, as this action reads them."""

    def __init__(self, loader, roles_dir, name):
        self.name = name
        self.path = os.path.join(roles_dir, name)
        self.spec = self._load(loader, "meta/argument_specs.yml", {}).get("argument_specs", {})
        self.options = (self.spec.get("main") or {}).get("options") or {}
        self.defaults = self._load(loader, "defaults/main.yml", {}) or {}
        self.vars = self._load(loader, "vars/main.yml", {}) or {}
        self.dependencies = [
            (d.get("role") if isinstance(d, dict) else d).split(".")[-1]
            for d in (self._load(loader, "meta/main.yml", {}) or {}).get("dependencies") or []
        ]
        self.validate = self._load(loader, "tasks/validate.yml", None)

    def _load(self, loader, relative, missing):
        path = os.path.join(self.path, relative)
        if not os.path.isfile(path):
            return missing
        return loader.load_from_file(path, unsafe=True, trusted_as_template=True)  # read-only here: no copy

    @property
    def evaluable(self):
        """True when the validate step is asserts only (each task: name, vars, when, loop, loop_control)."""
        tasks = self.validate or []
        return all(isinstance(t, dict) and set(t) <= _TASK_KEYS and any(a in t for a in _ASSERT_NAMES) for t in tasks)


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        args = self.validate_argument_spec(argument_spec=_ARGUMENT_SPEC)[1]
        task_vars = task_vars or {}
        roles_dir = args["roles_dir"]
        if not os.path.isdir(roles_dir):
            raise AnsibleError(f"roles_dir {roles_dir} is not a directory")

        roles = {
            name: _Role(self._loader, roles_dir, name)
            for name in sorted(os.listdir(roles_dir))
            if os.path.isfile(os.path.join(roles_dir, name, "meta", "argument_specs.yml"))
        }
        unknown_roles = sorted(set(args["roles"]) - set(roles))
        if unknown_roles:
            result.update(
                failed=True,
                msg=f"preflight_validate_roles names roles without meta/argument_specs.yml: {', '.join(unknown_roles)}"
                f" (roles with one: {', '.join(roles)})",
            )
            return result
        checked = [r for r in (args["roles"] or list(roles)) if r not in args["exclude"]]

        host_vars = task_vars.get("hostvars", {}).get(task_vars.get("inventory_hostname"), {})
        inventory_set = {k: task_vars[k] for k in host_vars if k in task_vars}
        problems = []
        if args["check_unknown_variables"]:
            problems += self._unknown_variables(roles, inventory_set)
        problems += self._string_booleans(roles, inventory_set, task_vars)
        evaluated = [n for n in checked if roles[n].validate is not None and roles[n].evaluable]
        for name in checked:
            refused = self._argument_spec(roles[name], inventory_set, task_vars)
            problems += refused
            if name in evaluated and not refused:  # the rules beyond types assume the types are right
                problems += self._validate_step(roles, roles[name], task_vars)

        result["changed"] = False
        result["roles_checked"] = checked
        result["roles_validated"] = evaluated
        result["include_roles"] = [n for n in checked if roles[n].validate is not None and not roles[n].evaluable]
        if problems:
            result["failed"] = True
            result["problems"] = problems
            result["msg"] = "the inventory's values are refused, nothing was changed:\n- " + "\n- ".join(problems)
        else:
            result["msg"] = f"{len(checked)} roles accept the inventory's values"
        return result

    def _template(self, value, variables):
        return self._templar.copy_with_new_env(available_variables=variables).template(value)

    def _unknown_variables(self, roles, inventory_set):
        """Variables named like a role's (<role>_...) that no role declares: a misspelling."""
        prefix = re.compile("^(" + "|".join(re.escape(r) for r in roles) + ")_")
        declared = set()
        for role in roles.values():
            declared.update(role.defaults)
            for entry in role.spec.values():
                declared.update((entry or {}).get("options") or {})
        unknown = sorted(k for k in inventory_set if prefix.match(k) and k not in declared)
        if not unknown:
            return []
        return [
            f"unknown variable(s) {', '.join(unknown)}: no role declares them in roles/<role>/meta/argument_specs.yml;"
            " check the spelling in the inventory or -e"
        ]

    def _string_booleans(self, roles, inventory_set, task_vars):
        """-e name=no passes the string "no", which a `when:` takes for true: booleans must be booleans."""
        bools = sorted(
            {
                k
                for role in roles.values()
                for entry in role.spec.values()
                for k, o in ((entry or {}).get("options") or {}).items()
                if (o or {}).get("type") == "bool" and k in inventory_set
            }
        )
        found = [k for k in bools if isinstance(self._template(inventory_set[k], task_vars), str)]
        if not found:
            return []
        return [
            f"{', '.join(found)} {'is a string' if len(found) == 1 else 'are strings'}, not true/false: -e name=value"
            f" always passes a string. Pass a boolean: -e '{{\"{found[0]}\": true}}' (JSON) or -e @vars.yml, and write"
            " true/false unquoted in inventory files"
        ]

    def _argument_spec(self, role, inventory_set, task_vars):
        """The role's spec against the values the inventory (or -e) sets; defaults are right by construction."""
        spec = {k: v for k, v in role.options.items() if k in inventory_set}
        if not spec:
            return []
        values = {k: self._template(inventory_set[k], task_vars) for k in spec}
        validation = ArgumentSpecValidator(spec).validate(values)
        return [f"role {role.name} (meta/argument_specs.yml): {m}" for m in validation.error_messages]

    def _role_scope(self, roles, role, task_vars):
        """What the role's own tasks see: the run's variables over its vars, defaults and its dependencies' defaults."""
        layers = [task_vars, role.vars, role.defaults]
        layers += [roles[d].defaults for d in role.dependencies if d in roles]
        return collections.ChainMap(*layers)

    def _validate_step(self, roles, role, task_vars):
        scope = self._role_scope(roles, role, task_vars)
        problems = []
        for task in role.validate or []:
            try:
                problems += self._assert_task(role, task, scope)
            except AnsibleError as e:  # a rule that cannot be evaluated is a refusal, never a pass
                problems.append(f"role {role.name}: {task.get('name', 'an assert')}: {e.message}")
        return problems

    def _assert_task(self, role, task, scope):
        args = next(task[a] for a in _ASSERT_NAMES if a in task) or {}
        thats = args.get("that", [])
        thats = thats if isinstance(thats, list) else [thats]
        whens = task.get("when", [])
        whens = whens if isinstance(whens, list) else [whens]
        fail_msg = args.get("fail_msg", args.get("msg", "Assertion failed"))
        task_scope = collections.ChainMap(dict(task.get("vars") or {}), scope)
        items = [None]
        loop_var = (task.get("loop_control") or {}).get("loop_var", "item")
        if "loop" in task:
            items = self._template(task["loop"], task_scope)
        problems = []
        for item in items:
            variables = task_scope if "loop" not in task else collections.ChainMap({loop_var: item}, task_scope)
            templar = self._templar.copy_with_new_env(available_variables=variables)
            if not all(templar.evaluate_conditional(w) for w in whens):
                continue
            if not all(templar.evaluate_conditional(t) for t in thats):
                problems.append(f"role {role.name}: {task.get('name', 'an assert')}: {templar.template(fail_msg)}")
        return problems
