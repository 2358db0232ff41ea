# -*- coding: utf-8 -*-
# Copyright: coderstack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Imports, ahead of the tasks, what the collection's modules import, in an interpreter that outlives a module run.

Under Mitogen (the ``coderstack.platform.accelerated`` strategy) every module runs in one persistent Python on the
target, and what a module imports stays imported for the next one: the kubernetes client, kubernetes.core's
module_utils and this collection's. The strategy calls :func:`import_module` there for each of :data:`MODULES`, one
call each, at the start of a run, while the controller is still busy with the first plays: the first Kubernetes or
Coder task does not pay for the imports, and a task that comes first waits for one import at most, not all of them.
Nothing else differs: the same modules, imported once per run, as the first task that needs them would have.
"""

import importlib

_K8S = "ansible_collections.kubernetes.core.plugins.module_utils."
_OWN = "ansible_collections.coderstack.platform.plugins.module_utils."

#: What the modules of kubernetes.core and of this collection import (the rest follows from these).
MODULES = (
    "kubernetes.dynamic",
    "kubernetes.client",
    "kubernetes.config",
    "ansible.module_utils.basic",
    "ansible.module_utils.urls",
    _K8S + "ansiblemodule",
    _K8S + "args_common",
    _K8S + "common",
    _K8S + "k8s.core",
    _K8S + "k8s.client",
    _K8S + "k8s.runner",
    _K8S + "k8s.service",
    _K8S + "k8s.resource",
    _K8S + "k8s.waiter",
    _K8S + "selector",
    _K8S + "helm",
    _OWN + "coder_module",
    _OWN + "coder_users",
    _OWN + "coder_tokens",
    _OWN + "coder_templates",
    _OWN + "coder_workspaces",
)


def import_module(name):
    """Import ``name``; False when it cannot be imported (a missing optional library is the business of the module
    that needs it, which reports it when it runs)."""
    try:
        importlib.import_module(name)
    except Exception:  # noqa: BLE001 - any failure is the using module's to report, when it runs
        return False
    return True
