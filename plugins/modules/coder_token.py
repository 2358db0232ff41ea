#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: coderstack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: coder_token
short_description: A Coder API token for automation, kept in a Kubernetes Secret and reused while it works
description:
  - Reads the token stored in key O(secret_key) of Secret O(secret_name) in O(secret_namespace). When it still
    authenticates (C(GET /api/v2/users/me)) as the wanted user, nothing changes (C(changed=false), the Secret is
    not written).
  - Otherwise (Secret or key missing, token expired or revoked, O(force=true)) it authenticates with O(coder_token)
    or by password login (O(login_email)/O(login_password)), deletes a previous token of the same O(token_name)
    of that user, creates a new one (C(POST /api/v2/users/{user}/keys/tokens)) and stores it in the Secret.
  - The token is never returned unless O(return_token=true); then protect the task with C(no_log).
options:
  coder_token:
    description:
      - A token allowed to create tokens for O(username) (the user's own, or an owner's).
      - Not needed when O(login_email)/O(login_password) are given.
    type: str
    aliases: [token]
  username:
    description:
      - Owner of the token. Defaults to the user that authenticates (C(me)).
      - The stored token is only reused when it belongs to this user.
    type: str
  login_email:
    description: Email to log in with when O(coder_token) is not given.
    type: str
  login_password:
    description: Password for O(login_email).
    type: str
  token_name:
    description: Name of the token in Coder (unique per user).
    type: str
    default: coderstack
  lifetime_days:
    description:
      - Lifetime of a new token in days. C(0) (default) asks for the longest lifetime the server allows
        (C(CODER_MAX_TOKEN_LIFETIME), read from C(GET /api/v2/users/{user}/keys/tokens/tokenconfig)); a longer value
        is cut to that maximum with a warning.
    type: int
    default: 0
  secret_name:
    description: Kubernetes Secret that keeps the token.
    type: str
    required: true
  secret_namespace:
    description: Namespace of the Secret.
    type: str
    required: true
  secret_key:
    description: Key of the token in the Secret.
    type: str
    default: token
  kubeconfig:
    description: Kubeconfig file for the Kubernetes API (default is the in-cluster config or C(~/.kube/config)).
    type: path
  context:
    description: Kubeconfig context.
    type: str
  force:
    description: Create a new token even when the stored one works (rotation).
    type: bool
    default: false
  return_token:
    description: Return the token in RV(token). Use only with C(no_log) on the task.
    type: bool
    default: false
requirements:
  - kubernetes (Python)
extends_documentation_fragment:
  - coder
author: coderstack contributors
"""

EXAMPLES = r"""
- name: Secret coder-admin-token holds a working token of the admin
  coder_token:
    coder_url: "{{ coder_url }}"
    login_email: admin@example.com
    login_password: "{{ coder_admin_password }}"
    token_name: coderstack
    secret_name: coder-admin-token
    secret_namespace: coder
    kubeconfig: "{{ coderstack_kubeconfig }}"
    context: "{{ coderstack_context }}"
  no_log: true
"""

RETURN = r"""
reused:
  description: Whether the token already stored in the Secret was kept.
  returned: always
  type: bool
user:
  description: The user the token belongs to.
  returned: always (in check mode, when known)
  type: dict
  sample: {"id": "8e5f...", "username": "admin"}
token_id:
  description: Id of the token in Coder (the public half of the key; not secret).
  returned: when known
  type: str
secret:
  description: Where the token is stored.
  returned: always
  type: dict
  sample: {"name": "coder-admin-token", "namespace": "coder", "key": "token", "resource_version": "1234"}
token:
  description: The token itself, only with O(return_token=true).
  returned: when return_token
  type: str
api_calls:
  description: Coder API calls made, per HTTP method.
  returned: always
  type: dict
"""

import contextlib
import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.coder_client import CoderError
from ansible.module_utils.coder_common import SecretStore, api_calls, client_from_module, connection_spec, fail


def main():
    module = AnsibleModule(
        argument_spec=connection_spec(
            username={"type": "str"},
            login_email={"type": "str"},
            login_password={"type": "str", "no_log": True},
            token_name={"type": "str", "default": "coderstack", "no_log": False},
            lifetime_days={"type": "int", "default": 365},
            secret_name={"type": "str", "required": True},
            secret_namespace={"type": "str", "required": True},
            secret_key={"type": "str", "default": "token", "no_log": False},
            kubeconfig={"type": "path"},
            context={"type": "str"},
            force={"type": "bool", "default": False},
            return_token={"type": "bool", "default": False},
        ),
        required_together=[("login_email", "login_password")],
        supports_check_mode=True,
    )
    p = module.params
    ns, name, key = p["secret_namespace"], p["secret_name"], p["secret_key"]
    where = "Secret %s/%s key %s" % (ns, name, key)
    secret_info = {"name": name, "namespace": ns, "key": key}
    client = client_from_module(module)
    result = {"changed": False, "reused": False, "secret": secret_info}

    try:
        store = SecretStore(p["kubeconfig"], p["context"])
        sec, data = store.read(ns, name)
    except Exception as e:  # noqa: BLE001 - any Kubernetes failure is reported the same way
        module.fail_json(
            msg="reading %s failed: %s; check kubeconfig/context and that the namespace exists" % (where, e)
        )
    if sec is not None:
        secret_info["resource_version"] = sec.metadata.resource_version

    stored = data.get(key)
    before = {"secret": name, "token_valid": False}
    if stored:
        try:
            owner = client.check_token(stored)
        except CoderError as e:
            fail(module, "checking the token stored in " + where, e)
        if owner is not None:
            before.update(token_valid=True, user=owner.get("username"), token_id=stored.split("-", 1)[0])
            if not p["force"] and (not p["username"] or p["username"] in (owner.get("username"), owner.get("id"))):
                result.update(reused=True, user={"id": owner.get("id"), "username": owner.get("username")})
                result["token_id"] = before["token_id"]
                if p["return_token"]:
                    result["token"] = stored
                module.exit_json(api_calls=api_calls(client), **result)

    # A new token is needed.
    if module.check_mode:
        # No login in check mode (the credentials may not even exist yet on a fresh install): report the change.
        after = {
            "secret": name,
            "token_valid": True,
            "user": p["username"] or "(authenticating user)",
            "token_id": "(new)",
        }
        result.update(
            changed=True, diff={"before": before, "after": after, "before_header": where, "after_header": where}
        )
        module.exit_json(api_calls=api_calls(client), **result)
    session = None
    auth_token = p["coder_token"]
    if not auth_token:
        if not p["login_email"]:
            module.fail_json(
                msg="%s holds no working token and neither coder_token nor login_email/login_password is given: "
                "pass one of them so a new token can be created" % where
            )
        try:
            session = client.login(p["login_email"], p["login_password"])
        except CoderError as e:
            hint = None
            if e.status == 401:
                hint = "the email/password of %s do not log in to Coder: check the credentials" % p["login_email"]
            fail(module, "logging in as %s to create a token" % p["login_email"], e, hint)
        auth_token = session
    client.token = auth_token
    owner = p["username"] or "me"
    try:
        me = client.get_user(owner)
        if me is None:
            module.fail_json(msg="user %s does not exist in Coder: create it first (coder_user)" % owner)
        existing = client.get_token(me["id"], p["token_name"])
        result["user"] = {"id": me.get("id"), "username": me.get("username")}
        result["changed"] = True
        after = {"secret": name, "token_valid": True, "user": me.get("username"), "token_id": "(new)"}
        result["diff"] = {"before": before, "after": after, "before_header": where, "after_header": where}
        if module.check_mode:
            module.exit_json(api_calls=api_calls(client), **result)
        lifetime = p["lifetime_days"] * 86400
        max_lifetime = client.max_token_lifetime_seconds(me["id"])
        if existing:
            if existing["id"] == auth_token.split("-", 1)[0]:
                # rotating the very token we authenticate with: bridge with a short-lived temporary token
                temp = client.create_token(me["id"], "%s-rotating-%d" % (p["token_name"], int(time.time())), 600)
                client.token = temp
            client.delete_token(me["id"], existing["id"])
        if max_lifetime and (lifetime == 0 or lifetime > max_lifetime):
            if lifetime:
                module.warn(
                    f"lifetime_days {p['lifetime_days']} exceeds the server's maximum token lifetime "
                    f"({max_lifetime // 3600}h, CODER_MAX_TOKEN_LIFETIME); using the maximum"
                )
            lifetime = max_lifetime
        new = client.create_token(me["id"], p["token_name"], lifetime_seconds=lifetime)
    except CoderError as e:
        fail(module, "creating token %s for user %s" % (p["token_name"], owner), e)
    finally:
        if session and module.check_mode:
            _logout(client, session)
    if client.token != auth_token:  # drop the temporary rotation token
        try:
            client.delete_token(me["id"], client.token.split("-", 1)[0])
        except CoderError:
            module.warn("could not delete the temporary token used for the rotation; it expires in 10 minutes")
    after["token_id"] = new.split("-", 1)[0]
    result["token_id"] = after["token_id"]
    try:
        stored_obj = store.write(
            ns, name, {key: new}, existing=sec, labels={"app.kubernetes.io/managed-by": "coderstack"}
        )
    except Exception as e:  # noqa: BLE001
        module.fail_json(
            msg="storing the new token in %s failed: %s (token %s was created in Coder)" % (where, e, after["token_id"])
        )
    secret_info["resource_version"] = stored_obj.metadata.resource_version
    if session:
        _logout(client, session)
    if p["return_token"]:
        result["token"] = new
    module.exit_json(api_calls=api_calls(client), **result)


def _logout(client, session):
    with contextlib.suppress(CoderError):
        client.request("POST", "/api/v2/users/logout", token=session)


if __name__ == "__main__":
    main()
