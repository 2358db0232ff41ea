#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: coderstack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: coder_info
short_description: Read a Coder deployment's build info, users and templates (for reporting)
description:
  - Read-only; always C(changed=false). Build info needs no token; users and templates do.
options:
  coder_token:
    description:
      - A token (any user's; owners see all users and templates). Needed for C(users) and C(templates).
      - When not given, the token is read from the Secret O(token_secret); without either, only C(buildinfo) can
        be gathered.
    type: str
    aliases: [token]
  gather:
    description: What to read.
    type: list
    elements: str
    default: [buildinfo, users, templates]
    choices: [buildinfo, users, templates]
  organization:
    description: List only the templates of this organization (a name, an id or C(default)); unset lists them all.
    type: str
extends_documentation_fragment:
  - coderstack.platform.coder
author:
  - coderstack maintainers (@coderstack)
"""

EXAMPLES = r"""
- name: Coder's state is read
  coderstack.platform.coder_info:
    coder_url: "{{ coder_url }}"
    coder_token: "{{ coder_admin_token }}"
  register: coder
  no_log: true

- name: Coder's version is shown
  ansible.builtin.debug:
    msg: "{{ coder.buildinfo.version }}"
"""

RETURN = r"""
buildinfo:
  description: C(GET /api/v2/buildinfo).
  returned: when gathered
  type: dict
  sample: {"version": "v2.24.4", "external_url": "https://github.com/coder/coder/commit/..."}
users:
  description: Users with their managed fields plus id, status and created_at.
  returned: when gathered
  type: list
  elements: dict
templates:
  description:
    - Templates with id, name, organization_name, active_version_id, deprecated, created_at and their settings
      (display_name, description, icon, TTLs, ...); each can be passed to M(coderstack.platform.coder_template) as
      O(coderstack.platform.coder_template#module:template_info).
  returned: when gathered
  type: list
  elements: dict
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
from ansible_collections.coderstack.platform.plugins.module_utils.coder_templates import PATCH_FIELDS
from ansible_collections.coderstack.platform.plugins.module_utils.coder_transport import CoderError
from ansible_collections.coderstack.platform.plugins.module_utils.coder_users import user_view

# what identifies a template, and its settings (all coder_template needs of it: template_info)
TEMPLATE_FIELDS = ("id", "organization_name", "active_version_id", "deprecated", "created_at", *PATCH_FIELDS)


def main():
    module = AnsibleModule(
        argument_spec=coder_argument_spec(
            gather={
                "type": "list",
                "elements": "str",
                "default": ["buildinfo", "users", "templates"],
                "choices": ["buildinfo", "users", "templates"],
            },
            organization={"type": "str"},
        ),
        supports_check_mode=True,
    )
    secret_free(module)  # its failures and warnings never carry a secret
    p = module.params
    needs_token = "users" in p["gather"] or "templates" in p["gather"]
    client = coder_client(module, need_token=needs_token, what="reading users/templates of %s" % p["coder_url"])
    result = {"changed": False}
    step = "reading build info"
    try:
        if "buildinfo" in p["gather"]:
            result["buildinfo"] = client.buildinfo()
        if "users" in p["gather"]:
            step = "listing users"
            result["users"] = [
                dict(user_view(u), id=u.get("id"), status=u.get("status"), created_at=u.get("created_at"))
                for u in client.list_users()
            ]
        if "templates" in p["gather"]:
            step = "listing templates"
            result["templates"] = [
                {k: t.get(k) for k in TEMPLATE_FIELDS} for t in client.list_templates(p["organization"])
            ]
    except CoderError as e:
        fail(module, "%s of %s" % (step, p["coder_url"]), e)
    module.exit_json(api_calls=api_calls(client), **result)


if __name__ == "__main__":
    run_main(main)
