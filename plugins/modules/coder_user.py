#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: coderstack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: coder_user
short_description: A user of a Coder deployment (present/absent, roles, suspended, login type)
description:
  - Like the C(coderd_user) resource of coder/terraform-provider-coderd. Reads the user with one
    C(GET /api/v2/users/{username}) and only writes what differs.
  - Options left unset (C(null)) are not managed, except on creation where defaults apply
    (no roles besides the implicit C(member), active, C(password) login).
  - Coder's API cannot change a user's email; a different O(email) for an existing user fails with what to do.
  - Changing O(login_type) of an existing user needs a Coder version with C(PUT /api/v2/users/{user}/login-type);
    older servers make the module fail with a clear message.
  - To reconcile many users with one list call, use M(coderstack.platform.coder_users).
options:
  coder_token:
    description:
      - Token of an owner or user-admin.
      - When not given, the token is read from the Secret O(token_secret) (e.g. C(coder-admin-token)).
    type: str
    aliases: [token]
  username:
    description: Username (the key of the user).
    type: str
    required: true
  email:
    description: Email; required to create the user.
    type: str
  name:
    description: Full name.
    type: str
  roles:
    description: Site-wide roles (C(member) is implicit). C([]) removes all; unset leaves them alone.
    type: list
    elements: str
    choices: [owner, template-admin, user-admin, auditor]
  suspended:
    description: Whether the user is suspended.
    type: bool
  login_type:
    description:
      - How the user logs in. Defaults to C(password) on creation.
      - Since Coder 2.36, C(none) is for service accounts only (a Premium feature, users without an email); Coder
        refuses it otherwise, and its upgrade to 2.36 turned existing C(none) users into C(password) users. For users
        without a password use C(oidc) (needs OIDC configured) or C(github).
    type: str
    choices: [password, none, github, oidc]
  password:
    description: Password, used only when the user is created with login type C(password).
    type: str
  state:
    description: Whether the user exists.
    type: str
    default: present
    choices: [present, absent]
extends_documentation_fragment:
  - coderstack.platform.coder
author:
  - coderstack maintainers (@coderstack)
"""

EXAMPLES = r"""
- name: Alice is a template admin
  coderstack.platform.coder_user:
    coder_url: "{{ coder_url }}"
    coder_token: "{{ coder_admin_token }}"
    username: alice
    email: alice@example.com
    name: Alice Example
    roles: [template-admin]
    password: "{{ alice_password }}"

- name: Bob is gone
  coderstack.platform.coder_user:
    coder_url: "{{ coder_url }}"
    token_secret: coder-admin-token
    token_namespace: coder
    username: bob
    state: absent
"""

RETURN = r"""
user:
  description: The managed fields of the user after the run (empty when absent).
  returned: always
  type: dict
  sample: {"username": "alice", "email": "alice@example.com", "name": "Alice Example", "roles": ["template-admin"],
           "suspended": false, "login_type": "password"}
actions:
  description: API changes made (or, in check mode, that would be made), e.g. C(create), C(roles), C(suspend).
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
from ansible_collections.coderstack.platform.plugins.module_utils.coder_users import (
    USER_OPTIONS,
    UserError,
    reconcile_user,
)


def main():
    module = AnsibleModule(argument_spec=coder_argument_spec(**USER_OPTIONS), supports_check_mode=True)
    secret_free(module)  # its failures and warnings never carry a secret
    p = module.params
    what = "Coder user %s" % p["username"]
    client = coder_client(module, what="reconciling " + what)
    want = {k: p[k] for k in USER_OPTIONS}
    try:
        existing = client.get_user(p["username"])
        changed, before, after, actions = reconcile_user(client, want, existing, module.check_mode)
    except UserError as e:
        module.fail_json(msg=str(e), api_calls=api_calls(client))
    except CoderError as e:
        fail(module, "reconciling " + what, e, api_calls=api_calls(client))
    result = {"changed": changed, "user": after, "actions": actions, "api_calls": api_calls(client)}
    if changed:
        result["diff"] = {"before": before, "after": after, "before_header": what, "after_header": what}
    module.exit_json(**result)


if __name__ == "__main__":
    run_main(main)
