#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: coderstack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: coder_template
short_description: A Coder workspace template kept in sync with a directory of Terraform files
description:
  - Packs O(directory) into a deterministic tar (sorted paths, fixed mtimes, owner 0, no C(.terraform/), state or
    VCS files) and computes a content hash over the tar and O(variables).
  - When the template's active version carries the same hash (it is kept in the version's message), nothing is
    uploaded and the result is C(changed=false) after two read calls (the template by name and its active version).
  - Otherwise uploads the tar (C(POST /api/v2/files)), creates a template version with the template variables
    (C(POST /api/v2/organizations/{org}/templateversions)), waits for the import job (polling with backoff), and
    creates the template or promotes the new version (C(PATCH /api/v2/templates/{id}/versions)). A failed import
    fails the task with the job's error and the provisioner's log, and leaves the active version untouched.
  - Template settings (display name, description, icon, TTLs, ...) are updated with one C(PATCH) when they differ;
    settings left unset are not managed.
  - O(state=absent) deletes the template (Coder refuses while workspaces use it).
  - Check mode reports what would change; with C(--diff) the diff lists the files (sha256 per path), variable values
    and settings before and after.
options:
  coder_token:
    description:
      - API token of a user allowed to manage templates (owner or template-admin).
      - When not given, the token is read from the Secret O(token_secret).
    type: str
    aliases: [token]
  name:
    description: Template name (unique in the organization; lower case, digits and dashes).
    type: str
    required: true
  organization:
    description: Organization name or id; C(default) is the deployment's default organization.
    type: str
    default: default
  directory:
    description:
      - Directory with the template's Terraform files (at least one C(.tf) file). Required with O(state=present).
    type: path
  variables:
    description:
      - Values of the template's Terraform C(variable)s (Coder's C(user_variable_values)). Booleans become
        C(true)/C(false), lists and maps JSON. A variable without a default must be given here.
    type: dict
    default: {}
  display_name:
    description: Display name shown in the dashboard.
    type: str
  description:
    description: Description (up to 128 characters).
    type: str
  icon:
    description: Icon path or URL (for example C(/icon/k8s.png)).
    type: str
  default_ttl:
    description: Default workspace auto-stop time in seconds (C(0) = none).
    type: int
  activity_bump:
    description: Seconds a workspace's deadline moves with activity.
    type: int
  allow_user_cancel_workspace_jobs:
    description: Whether users may cancel their workspace builds.
    type: bool
  require_active_version:
    description: Require workspaces to use the active version (an enterprise feature; ignored by AGPL Coder).
    type: bool
  deprecation_message:
    description: Deprecate the template with this message (empty string un-deprecates; enterprise feature).
    type: str
  activate:
    description: Promote a newly imported version to active. With C(false) the version is only uploaded.
    type: bool
    default: true
  message:
    description: Text put before the content hash in the message of a new version.
    type: str
    default: ""
  provisioner_tags:
    description: Provisioner tags of the import job (which provisioner daemons may run it).
    type: dict
    default: {}
  import_timeout:
    description: Seconds to wait for the import job.
    type: int
    default: 900
  template_info:
    description:
      - The template as Coder's template list returned it in this run (an element of C(templates) of
        M(coderstack.platform.coder_info)), to save the lookup of the template by name. Ignored when it names another
        template or lacks its active version. Omit to look the template up.
    type: dict
  state:
    description: C(present) creates or updates the template, C(absent) deletes it.
    type: str
    default: present
    choices: [present, absent]
notes:
  - Supports check mode and diff mode.
  - The token is never logged (C(no_log)).
extends_documentation_fragment:
  - coderstack.platform.coder
author:
  - coderstack maintainers (@coderstack)
"""

EXAMPLES = r"""
- name: Template kubernetes-dind is active on the Coder server
  coderstack.platform.coder_template:
    coder_url: https://coder.example.com
    coder_token: "{{ coder_admin_token }}"
    name: kubernetes-dind
    directory: "{{ playbook_dir }}/../templates/kubernetes-dind"
    display_name: Kubernetes (docker-in-docker)
    description: Pod with dockerd, code-server and persistent home, docker and linuxbrew volumes
    icon: /icon/k8s.png
    default_ttl: 28800
    variables:
      namespace: coder
      default_image: registry.example.com/coderstack/workspace:1.0
      privileged: true

- name: Template old-template is gone
  coderstack.platform.coder_template:
    coder_url: https://coder.example.com
    token_secret: coder-admin-token
    token_namespace: coder
    name: old-template
    state: absent
"""

RETURN = r"""
changed:
  description: Whether anything was (or, in check mode, would be) uploaded, promoted, updated or deleted.
  returned: always
  type: bool
uploaded:
  description: Whether the tar was uploaded and a new version imported.
  returned: always
  type: bool
content_hash:
  description: sha256 over the deterministic tar and the variables (kept in the version's message).
  returned: state=present
  type: str
  sample: 3f2a9c1b4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8
files:
  description: Paths packed into the tar.
  returned: state=present
  type: list
  elements: str
  sample: [README.md, main.tf]
files_changed:
  description: Files added, removed and modified against the active version (empty when the content is unchanged).
  returned: state=present
  type: dict
  sample: {added: [], removed: [], modified: [main.tf]}
variables_changed:
  description: Names of the template variables whose values changed.
  returned: state=present
  type: list
  elements: str
settings_changed:
  description: API fields of the template settings that changed.
  returned: state=present
  type: list
  elements: str
created:
  description: Whether the template was created.
  returned: state=present
  type: bool
promoted:
  description: Whether a new version became active.
  returned: state=present
  type: bool
template:
  description: The template (id, name, display_name, description, icon, active_version_id, default_ttl_ms).
  returned: always
  type: dict
version:
  description: The active (or newly imported) version (id, name, message, job_status, job_error, file_id).
  returned: state=present
  type: dict
import_seconds:
  description: Seconds the import job took.
  returned: when a version was imported
  type: float
logs:
  description: Provisioner log lines of a failed import (error lines and the tail).
  returned: on import failure
  type: list
  elements: str
progress:
  description: What the module did while waiting (upload, job status changes with elapsed time).
  returned: always
  type: list
  elements: str
api_calls:
  description: Number of API calls per HTTP method (an unchanged template costs two GET calls).
  returned: always
  type: dict
  sample: {GET: 2}
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
from ansible_collections.coderstack.platform.plugins.module_utils.coder_templates import (
    TemplateError,
    TemplateSync,
    wanted_settings,
)
from ansible_collections.coderstack.platform.plugins.module_utils.coder_transport import CoderError


def main():
    argument_spec = coder_argument_spec(
        name={"type": "str", "required": True},
        organization={"type": "str", "default": "default"},
        directory={"type": "path"},
        variables={"type": "dict", "default": {}},
        display_name={"type": "str"},
        description={"type": "str"},
        icon={"type": "str"},
        default_ttl={"type": "int"},
        activity_bump={"type": "int"},
        allow_user_cancel_workspace_jobs={"type": "bool"},
        require_active_version={"type": "bool"},
        deprecation_message={"type": "str"},
        activate={"type": "bool", "default": True},
        message={"type": "str", "default": ""},
        provisioner_tags={"type": "dict", "default": {}},
        import_timeout={"type": "int", "default": 900},
        template_info={"type": "dict"},
        state={"type": "str", "default": "present", "choices": ["present", "absent"]},
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        supports_check_mode=True,
        required_if=[("state", "present", ["directory"])],
    )
    secret_free(module)  # its failures and warnings never carry a secret
    p = module.params
    name = p["name"]
    client = coder_client(module, what=f"template {name}")
    sync = TemplateSync(client, organization=p["organization"], log=module.log)

    if p["state"] == "absent":
        try:
            template = sync.remove(name, module.check_mode)
        except CoderError as e:
            fail(
                module,
                f"deleting template {name}",
                e,
                hint="Coder refuses while workspaces use the template: delete them first" if e.status == 400 else None,
                api_calls=api_calls(client),
            )
        diff = {"before": {"template": name} if template else {}, "after": {}}
        module.exit_json(
            changed=bool(template),
            template={"id": template["id"], "name": name} if template else {},
            progress=sync.progress,
            api_calls=api_calls(client),
            diff=diff,
        )

    try:
        result = sync.sync(
            name,
            p["directory"],
            variables=p["variables"],
            settings=wanted_settings(p),
            activate=p["activate"],
            message=p["message"],
            check_mode=module.check_mode,
            want_diff=module._diff,
            import_timeout=p["import_timeout"],
            tags=p["provisioner_tags"],
            known=p["template_info"],
        )
    except TemplateError as e:
        module.fail_json(msg=str(e), progress=sync.progress, api_calls=api_calls(client), **e.result)
    except CoderError as e:
        fail(
            module,
            f"syncing template {name} from {p['directory']}",
            e,
            progress=sync.progress,
            api_calls=api_calls(client),
        )
    result["progress"] = sync.progress
    result["api_calls"] = api_calls(client)
    module.exit_json(**result)


if __name__ == "__main__":
    run_main(main)
