#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: coderstack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: coder_first_user
short_description: Create the first (owner) user of a Coder deployment, once
description:
  - A fresh Coder deployment has no user; the first one created through C(POST /api/v2/users/first) becomes the
    owner. This module creates it when the deployment has none and reports unchanged when it already has one.
  - Before anything is sent, it checks that O(coder_url) is a Coder deployment (C(GET /api/v2/buildinfo) answers
    JSON with a C(version)); otherwise it fails naming O(coder_url) and what answered (HTTP status, content type),
    without sending the email or password anywhere.
  - With O(verify_login=true) it also logs in with O(email)/O(password) to prove the credentials work, and always
    logs the session out again (also when a later step fails). Nothing secret is returned or shown in a failure.
options:
  coder_token:
    description:
      - Not needed by this module (the first-user endpoints are unauthenticated). It and the other token options
        (O(token_secret), O(token_namespace), O(token_key), O(kubeconfig), O(context)) are accepted and ignored,
        so C(module_defaults) for the action group C(coderstack.platform.coder) apply to it too.
    type: str
    aliases: [token]
  username:
    description: Username of the first user.
    type: str
    required: true
  email:
    description: Email of the first user (Coder's password login is by email).
    type: str
    required: true
  password:
    description: Password of the first user (Coder requires a strong one).
    type: str
    required: true
  name:
    description: Full name of the first user.
    type: str
    default: ""
  verify_login:
    description:
      - Log in with O(email)/O(password) to prove them (also when the first user already existed).
      - A wrong password makes the module fail; the login is rate limited by Coder (60 per minute).
    type: bool
    default: true
extends_documentation_fragment:
  - coderstack.platform.coder
author:
  - coderstack maintainers (@coderstack)
"""

EXAMPLES = r"""
- name: Coder has its first admin
  coderstack.platform.coder_first_user:
    coder_url: "{{ coder_url }}"
    username: admin
    email: admin@example.com
    password: "{{ coder_admin_password }}"
  no_log: true
"""

RETURN = r"""
created:
  description: Whether this run created the first user.
  returned: always
  type: bool
existed:
  description: Whether the deployment already had its first user before this run.
  returned: always
  type: bool
login_verified:
  description: Whether O(email)/O(password) were proven by a login.
  returned: always
  type: bool
user:
  description: The first user (when created or verified by login).
  returned: when created or verified
  type: dict
  sample: {"id": "8e5f...", "username": "admin", "email": "admin@example.com"}
version:
  description: Coder's version (from C(GET /api/v2/buildinfo)).
  returned: always
  type: str
  sample: v2.36.1
api_calls:
  description: Coder API calls made, per HTTP method.
  returned: always
  type: dict
  sample: {"GET": 2}
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
from ansible_collections.coderstack.platform.plugins.module_utils.coder_users import StepError, ensure_first_user


def main():
    module = AnsibleModule(
        argument_spec=coder_argument_spec(
            username={"type": "str", "required": True},
            email={"type": "str", "required": True},
            password={"type": "str", "required": True, "no_log": True},
            name={"type": "str", "default": ""},
            verify_login={"type": "bool", "default": True},
        ),
        supports_check_mode=True,
    )
    secret_free(module)  # its failures and warnings never carry a secret
    client = coder_client(module, token="")  # the first-user endpoints need no token: the token options are ignored
    try:
        result = ensure_first_user(client, module.params, module.check_mode, module.warn, module.add_secret)
    except StepError as e:
        fail(module, e.what, e.err, e.hint, api_calls=api_calls(client))
    module.exit_json(api_calls=api_calls(client), **result)


if __name__ == "__main__":
    run_main(main)
