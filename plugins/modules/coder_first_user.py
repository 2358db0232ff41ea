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
  sample: v2.30.0
api_calls:
  description: Coder API calls made, per HTTP method.
  returned: always
  type: dict
  sample: {"GET": 2}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.coderstack.platform.plugins.module_utils.coder_client import CoderError
from ansible_collections.coderstack.platform.plugins.module_utils.coder_module import (
    api_calls,
    coder_argument_spec,
    coder_client,
    fail,
    run_main,
    secret_free,
)


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
    p = module.params
    client = coder_client(module, token="")
    result = {"changed": False, "created": False, "existed": False, "login_verified": False}
    what = "first user %s of %s" % (p["username"], p["coder_url"])
    try:
        # Nothing is posted before coder_url proves to be Coder: a wrong URL must not receive the password.
        result["version"] = client.coder_buildinfo()["version"]
        exists = client.has_first_user()
    except CoderError as e:
        fail(module, "checking the " + what, e, api_calls=api_calls(client))
    result["existed"] = exists
    if not exists:
        result["changed"] = True
        result["created"] = True
        result["diff"] = {
            "before": {},
            "after": {"username": p["username"], "email": p["email"], "name": p["name"], "roles": ["owner"]},
            "before_header": "first user",
            "after_header": "first user",
        }
        if module.check_mode:
            module.exit_json(api_calls=api_calls(client), **result)
        try:
            res = client.create_first_user(p["username"], p["email"], p["password"], p["name"])
        except CoderError as e:
            fail(module, "creating the " + what, e, "fix the value Coder names above (e.g. a stronger password)")
        result["user"] = {"id": res.get("user_id"), "username": p["username"], "email": p["email"]}
    if p["verify_login"] and not module.check_mode:
        try:
            session = client.login(p["email"], p["password"])
        except CoderError as e:
            if e.status == 401:
                fail(
                    module,
                    "logging in as %s (%s)" % (p["email"], what),
                    e,
                    "the deployment already has a first user and this email/password does not log in: use the "
                    "password stored in Secret coder-admin (or reset it with `coder reset-password`)",
                )
            fail(module, "logging in as %s" % p["email"], e)
        module.add_secret(session)
        me, err = None, None
        try:
            me = client.me(token=session)
        except CoderError as e:
            err = e
        try:  # the session ends before anything else happens, on success and on failure
            client.logout(session)
        except CoderError as e:
            module.warn("ending the login session of %s failed: %s; it expires on its own" % (p["email"], e))
        if err is not None:
            fail(module, "reading the logged-in user " + p["email"], err)
        result["user"] = {"id": me.get("id"), "username": me.get("username"), "email": me.get("email")}
        if me.get("username") != p["username"]:
            module.warn(
                "the login %s belongs to user %s, not %s as configured"
                % (p["email"], me.get("username"), p["username"])
            )
        result["login_verified"] = True
    module.exit_json(api_calls=api_calls(client), **result)


if __name__ == "__main__":
    run_main(main)
