#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: coderstack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: coder_workspace
short_description: A Coder workspace for a user, started, stopped or absent
description:
  - Creates a workspace for O(owner) from O(template) with rich O(parameters), starts, stops or deletes it, and
    waits for the build. A started workspace is also waited for until every agent is C(connected) and C(ready) and,
    with O(wait_for_apps), every app with a health check is C(healthy).
  - "Idempotent: an unchanged workspace costs one read call (two when O(parameters) are given: the latest build's
    parameter values are compared). A workspace whose parameters differ is rebuilt with one C(start) build."
  - A workspace whose last build failed is rebuilt from the template's active version (the fix an admin pushed).
  - A failed build fails the task with the provisioner's C(Error:) lines; a workspace whose agent never connects
    fails with the agents' and apps' states and what usually causes them (the agent URL or its certificate).
  - Check mode reports the build that would run; with C(--diff) the state and parameters before and after.
options:
  coder_token:
    description:
      - API token of the owner, or of an owner/user-admin allowed to manage other users' workspaces.
      - When not given, the token is read from the Secret O(token_secret).
    type: str
    aliases: [token]
  owner:
    description: Username of the workspace's owner (C(me) = the token's user).
    type: str
    default: me
  name:
    description: Workspace name (Coder's rules; lower-case letters, digits and hyphens).
    type: str
    required: true
  template:
    description: Template the workspace is created from (needed to create it).
    type: str
  organization:
    description: Organization of the template.
    type: str
    default: default
  parameters:
    description:
      - Rich parameter values (C(name -> value)); values are sent as strings, booleans as C(true)/C(false).
      - Parameters not given keep their defaults (at creation) or their current values.
    type: dict
    default: {}
  ttl_ms:
    description: Auto-stop after this many ms of inactivity (set at creation only; unset = the template's default).
    type: int
  update:
    description: Rebuild a started workspace whose template has a newer active version (C(outdated)).
    type: bool
    default: false
  state:
    description: C(started), C(stopped) or C(absent) (deleting it deletes its volumes too).
    type: str
    default: started
    choices: [started, stopped, absent]
  wait:
    description: Wait for the build and, when started, for the agents (and apps). Off = return once the build is queued.
    type: bool
    default: true
  wait_for_apps:
    description: When started, also wait until every app with a health check reports C(healthy).
    type: bool
    default: true
  wait_timeout:
    description: Seconds to wait for the build, then again for the agents and apps.
    type: int
    default: 900
extends_documentation_fragment:
  - coderstack.platform.coder
author:
  - coderstack maintainers (@coderstack)
"""

EXAMPLES = r"""
- name: Alice has a started kubernetes-dind workspace with code-server healthy
  coderstack.platform.coder_workspace:
    coder_url: https://coder.example.com
    coder_token: "{{ admin_token }}"
    owner: alice
    name: dev
    template: kubernetes-dind
    parameters: {cpu: 2, memory: 4}

- name: Alice's workspace is stopped (its volumes are kept)
  coderstack.platform.coder_workspace:
    coder_url: https://coder.example.com
    token_secret: coder-admin-token
    token_namespace: coder
    owner: alice
    name: dev
    state: stopped
"""

RETURN = r"""
workspace:
  description: The workspace after the run (empty when absent).
  returned: always
  type: dict
  contains:
    id: {description: Workspace id., type: str}
    name: {description: Workspace name., type: str}
    owner: {description: Owner's username., type: str}
    template: {description: Template name., type: str}
    state: {description: "started, stopped, failed, busy or absent.", type: str}
    status: {description: Status of the latest build., type: str}
    build_number: {description: Number of the latest build., type: int}
    agents:
      description: Agents with status, lifecycle_state, version and apps (slug, health).
      type: list
      elements: dict
  sample: {"name": "dev", "owner": "alice", "state": "started", "agents": [{"name": "main", "status": "connected"}]}
build:
  description: The build that ran (create, start, stop, delete) or none.
  returned: always
  type: str
timings:
  description: >-
    Seconds from the module's start until the build ended (build_seconds), the agents connected
    (agent_connected_seconds) and the workspace was ready (ready_seconds).
  returned: when a build ran or the module waited
  type: dict
provisioner_log:
  description: The provisioner's error lines and the log's last lines, when a build failed.
  returned: on build failure
  type: list
  elements: str
progress:
  description: What the module waited for, with elapsed seconds.
  returned: always
  type: list
  elements: str
api_calls:
  description: Coder API calls made, per HTTP method.
  returned: always
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.coderstack.platform.plugins.module_utils.coder_module import (
    api_calls,
    coder_argument_spec,
    coder_client,
    fail,
    run_main,
    secret_free,
)
from ansible_collections.coderstack.platform.plugins.module_utils.coder_transport import CoderError
from ansible_collections.coderstack.platform.plugins.module_utils.coder_workspaces import (
    WorkspaceError,
    Workspaces,
    workspace_diff,
    workspace_view,
)


def main():
    argument_spec = coder_argument_spec(
        owner={"type": "str", "default": "me"},
        name={"type": "str", "required": True},
        template={"type": "str"},
        organization={"type": "str", "default": "default"},
        parameters={"type": "dict", "default": {}},
        ttl_ms={"type": "int"},
        update={"type": "bool", "default": False},
        state={"type": "str", "default": "started", "choices": ["started", "stopped", "absent"]},
        wait={"type": "bool", "default": True},
        wait_for_apps={"type": "bool", "default": True},
        wait_timeout={"type": "int", "default": 900},
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    secret_free(module)  # its failures and warnings never carry a secret
    p = module.params
    what = f"workspace {p['owner']}/{p['name']}"
    client = coder_client(module, what=what)
    svc = Workspaces(client, organization=p["organization"], log=module.log)
    result = {"changed": False, "build": "none"}
    ws = None
    try:
        wplan = svc.plan(p)
        ws = wplan.ws
        result.update(changed=wplan.action is not None, build=wplan.action or "none")
        if module._diff:
            result["diff"] = workspace_diff(ws, p["state"], p["parameters"], wplan.changes)
        if not module.check_mode:
            ws = svc.apply(p, wplan)
    except WorkspaceError as e:
        module.fail_json(
            msg=str(e), progress=svc.progress, timings=svc.timings, api_calls=api_calls(client), **e.result
        )
    except CoderError as e:
        fail(module, f"reconciling {what}", e, progress=svc.progress, api_calls=api_calls(client))
    module.exit_json(
        workspace=workspace_view(ws) if p["state"] != "absent" else {},
        progress=svc.progress,
        timings=svc.timings,
        api_calls=api_calls(client),
        **result,
    )


if __name__ == "__main__":
    run_main(main)
