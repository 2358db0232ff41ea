#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: coderstack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: coder_token
short_description: A Coder API token for automation, kept in a Kubernetes Secret and reused while it works
description:
  - Reads the token stored in key O(token_key) of Secret O(token_secret) in O(token_namespace) (the same options
    the other Coder modules read their token from, so one C(module_defaults) serves all). When it still
    authenticates (C(GET /api/v2/users/me)) as the wanted user and does not expire soon (its C(expires_at) from
    C(GET /api/v2/users/{user}/keys/{id})), nothing changes (C(changed=false), the Secret is not written).
  - Otherwise (Secret or key missing, token rejected with HTTP 401 because it expired or was revoked, it expires
    within a day - or within half its lifetime for tokens that live less than two days -, it belongs to another
    user, or O(force=true)) the module authenticates with O(coder_token), by password login
    (O(login_email)/O(login_password)) or, when neither is given, with the stored token while it still works, and
    rotates create-then-delete - creates a new token (C(POST /api/v2/users/{user}/keys/tokens)), stores it in the
    Secret, and only then deletes the previous tokens of O(token_name). A failure in between never leaves the
    Secret holding a deleted token (a failed write deletes the new token again).
  - Token names are unique per user, so while a token named O(token_name) still exists the new one is named
    C(<token_name>-<UTC timestamp>); both forms count as this module's tokens and are deleted at the next rotation.
  - A login session is always ended (C(POST /api/v2/users/logout)), on success and on failure.
  - The token is never returned unless O(return_token=true); then protect the task with C(no_log). Failure
    messages never contain the password, a token or credentials in URLs.
  - The Secret O(token_secret) is what this module manages, so it is never read as the credential to authenticate
    with (only its stored token may mint its own successor while it still works).
  - The Secret is read and written through the C(kubernetes.core) client (O(kubeconfig), O(context)).
options:
  coder_token:
    description:
      - A token allowed to create tokens for O(username) (the user's own, or an owner's).
      - Not needed when O(login_email)/O(login_password) are given.
    type: str
    aliases: [token]
  token_secret:
    description: Kubernetes Secret that keeps the token (created when missing).
    type: str
    required: true
    aliases: [secret_name]
  token_namespace:
    description: Namespace of the Secret.
    type: str
    required: true
    aliases: [secret_namespace]
  token_key:
    description: Key of the token in the Secret.
    type: str
    default: token
    aliases: [secret_key]
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
      - Lifetime of a new token in days. C(0) (default) asks for the longest lifetime the server allows for the
        token's user, read from C(GET /api/v2/users/{user}/keys/tokens/tokenconfig) (its C(max_token_lifetime) is
        C(CODER_MAX_ADMIN_TOKEN_LIFETIME) for owners, 168h by default since Coder v2.30, and C(CODER_MAX_TOKEN_LIFETIME)
        for other users). A longer value is cut to that maximum with a warning.
      - On servers without that endpoint, C(0) asks for the server's default token lifetime.
    type: int
    default: 0
  force:
    description: Create a new token even when the stored one works (rotation).
    type: bool
    default: false
  return_token:
    description: Return the token in RV(token). Use only with C(no_log) on the task.
    type: bool
    default: false
extends_documentation_fragment:
  - coderstack.platform.coder
author:
  - coderstack maintainers (@coderstack)
"""

EXAMPLES = r"""
- name: Secret coder-admin-token holds a working token of the admin
  coderstack.platform.coder_token:
    coder_url: "{{ coder_url }}"
    login_email: admin@example.com
    login_password: "{{ coder_admin_password }}"
    token_name: coderstack
    token_secret: coder-admin-token
    token_namespace: coder
    kubeconfig: "{{ coderstack_kubeconfig }}"
    context: "{{ coderstack_context }}"
  no_log: true
"""

RETURN = r"""
reused:
  description: Whether the token already stored in the Secret was kept.
  returned: always
  type: bool
reason:
  description: Why a new token was (or, in check mode, would be) created.
  returned: when a new token is needed
  type: str
  sample: the token stored in Secret coder/coder-admin-token key token is rejected by Coder (HTTP 401)
user:
  description: The user the token belongs to.
  returned: always (in check mode, when known)
  type: dict
  sample: {"id": "8e5f...", "username": "admin"}
token_id:
  description: Id of the token in Coder (the public half of the key; not secret).
  returned: when known
  type: str
token_name:
  description: Name of the new token in Coder (O(token_name), or O(token_name)-<UTC timestamp> while it was taken).
  returned: when a token was created
  type: str
expires_at:
  description: Expiry of the reused token (Coder moves it forward while the token is used).
  returned: when reused
  type: str
lifetime_seconds:
  description: Lifetime asked for the new token (C(0) = the server's default).
  returned: when a token was created
  type: int
deleted_token_ids:
  description: Ids of the previous tokens deleted after the new one was stored.
  returned: when a token was created
  type: list
  elements: str
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

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.coderstack.platform.plugins.module_utils.coder_module import (
    api_calls,
    coder_argument_spec,
    coder_client,
    run_main,
    secret_free,
    unset,
)
from ansible_collections.coderstack.platform.plugins.module_utils.coder_tokens import TokenError, keep_token
from ansible_collections.coderstack.platform.plugins.module_utils.kube import Secrets


def main():
    module = AnsibleModule(
        argument_spec=coder_argument_spec(
            username={"type": "str"},
            login_email={"type": "str"},
            login_password={"type": "str", "no_log": True},
            token_name={"type": "str", "default": "coderstack", "no_log": False},
            lifetime_days={"type": "int", "default": 0},
            # the Secret this module manages (never read as the credential to authenticate with)
            token_secret={"type": "str", "required": True, "no_log": False, "aliases": ["secret_name"]},
            token_namespace={"type": "str", "required": True, "no_log": False, "aliases": ["secret_namespace"]},
            token_key={"type": "str", "default": "token", "no_log": False, "aliases": ["secret_key"]},
            force={"type": "bool", "default": False},
            return_token={"type": "bool", "default": False},
        ),
        required_together=[("login_email", "login_password")],
        supports_check_mode=True,
    )
    secret_free(module)  # its failures and warnings never carry a secret
    p = module.params
    # authenticates with coder_token or login_email/login_password, never with the token in its own Secret
    client = coder_client(module, token=unset(p["coder_token"]) or "")
    store = Secrets(p["kubeconfig"], p["context"])
    try:
        result = keep_token(client, store, p, module.check_mode, warn=module.warn, add_secret=module.add_secret)
    except TokenError as e:
        module.fail_json(msg=str(e), api_calls=api_calls(client), **e.result)
    module.exit_json(api_calls=api_calls(client), **result)


if __name__ == "__main__":
    run_main(main)
