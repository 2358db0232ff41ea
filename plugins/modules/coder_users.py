#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: coderstack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: coder_users
short_description: Reconcile a list of Coder users with one list call
description:
  - Reads all users with C(GET /api/v2/users) (paginated, 100 per page) and then writes only what differs, so a
    run where nothing changed costs one API call per 100 users.
  - Each element takes the options of M(coderstack.platform.coder_user) (username, email, name, roles, suspended,
    login_type, password, state) with the same semantics. Users not in the list are left alone.
  - Stops at the first user that cannot be reconciled and names it.
options:
  coder_token:
    description:
      - Token of an owner or user-admin.
      - When not given, the token is read from the Secret O(token_secret) (e.g. C(coder-admin-token)).
    type: str
    aliases: [token]
  users:
    description: The users; see M(coderstack.platform.coder_user) for each field.
    type: list
    elements: dict
    required: true
    suboptions:
      username:
        description: Username.
        type: str
        required: true
      email:
        description: Email; required to create the user.
        type: str
      name:
        description: Full name.
        type: str
      roles:
        description: Site-wide roles; unset leaves them alone.
        type: list
        elements: str
        choices: [owner, template-admin, user-admin, auditor]
      suspended:
        description: Whether the user is suspended.
        type: bool
      login_type:
        description:
          - How the user logs in (C(password) on creation by default).
          - C(none) is for Premium service accounts since Coder 2.36.
        type: str
        choices: [password, none, github, oidc]
      password:
        description: Password, used only on creation with login type C(password).
        type: str
      state:
        description: Whether the user exists.
        type: str
        default: present
        choices: [present, absent]
  passwords:
    description:
      - Passwords by username, used when a user without its own C(password) is created with login type C(password)
        (the coder_users role passes the passwords it keeps in Secrets).
    type: dict
    default: {}
extends_documentation_fragment:
  - coderstack.platform.coder
author:
  - coderstack maintainers (@coderstack)
"""

EXAMPLES = r"""
- name: Coder users match the inventory
  coderstack.platform.coder_users:
    coder_url: "{{ coder_url }}"
    token_secret: coder-admin-token
    token_namespace: coder
    kubeconfig: "{{ coderstack_kubeconfig }}"
    users:
      - {username: alice, email: alice@example.com, roles: [template-admin], password: "{{ alice_pw }}"}
      - {username: bob, state: absent}
  no_log: true
"""

RETURN = r"""
users:
  description: Per user, its managed fields after the run and the actions taken (passwords never included).
  returned: always
  type: list
  elements: dict
  sample: [{"username": "alice", "changed": false, "actions": [], "user": {"roles": ["template-admin"]}}]
changed_users:
  description: Usernames that were (or in check mode would be) changed.
  returned: always
  type: list
  elements: str
api_calls:
  description: Coder API calls made, per HTTP method.
  returned: always
  type: dict
  sample: {"GET": 1}
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
from ansible_collections.coderstack.platform.plugins.module_utils.coder_users import (
    USER_OPTIONS,
    UserError,
    duplicate_usernames,
    reconcile_user,
)


def main():
    spec = coder_argument_spec(
        users={"type": "list", "elements": "dict", "required": True, "options": USER_OPTIONS},
        passwords={"type": "dict", "default": {}, "no_log": True},
    )
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    secret_free(module)  # its failures and warnings never carry a secret
    wanted = module.params["users"]
    duplicate = duplicate_usernames(wanted)
    if duplicate:
        module.fail_json(msg=duplicate)
    client = coder_client(module, what="reconciling Coder users")
    try:
        existing = {u["username"]: u for u in client.list_users()}
    except CoderError as e:
        fail(module, "listing Coder users", e)

    results, changed_users = [], []
    before_all, after_all = {}, {}
    for want in wanted:
        name = want["username"]
        if not want.get("password"):
            want = dict(want, password=module.params["passwords"].get(name))
        try:
            changed, before, after, actions = reconcile_user(client, want, existing.get(name), module.check_mode)
        except UserError as e:
            module.fail_json(msg=str(e), users=results, api_calls=api_calls(client))
        except CoderError as e:
            fail(module, "reconciling Coder user %s" % name, e, users=results, api_calls=api_calls(client))
        results.append({"username": name, "changed": changed, "actions": actions, "user": after})
        if changed:
            changed_users.append(name)
            before_all[name] = before
            after_all[name] = after
    result = {
        "changed": bool(changed_users),
        "users": results,
        "changed_users": changed_users,
        "api_calls": api_calls(client),
    }
    if changed_users:
        result["diff"] = {
            "before": before_all,
            "after": after_all,
            "before_header": "Coder users",
            "after_header": "Coder users",
        }
    module.exit_json(**result)


if __name__ == "__main__":
    run_main(main)
