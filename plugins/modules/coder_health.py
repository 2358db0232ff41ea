#!/usr/bin/python
# Copyright: coderstack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: coder_health
short_description: Coder's health report and its workspaces' agents as verdicts, each with a remedy
description:
  - Read-only; always C(changed=false). Never fails because Coder is unhealthy or does not answer, it says so in
    RV(checks) and RV(severity); the caller decides (C(playbooks/doctor.yml) fails on C(error)).
  - C(health) asks Coder for a fresh health report (C(GET /api/v2/debug/health?force=true), an owner's token) of the
    access URL, database, DERP, websockets, provisioners and workspace proxies. A section an admin dismissed in Coder
    is C(ok).
  - C(agents) lists the workspaces (C(GET /api/v2/workspaces)) and reports every running one whose agent is not
    connected.
  - A request that gets no usable answer becomes one verdict, C(Coder answers) (or C(Coder's certificate is trusted)
    when TLS verification failed), and the other checks are not run. It tries once more, no longer (a report of now).
options:
  coder_token:
    description:
      - An owner's token (the health report is for owners). When not given, it is read from the Secret O(token_secret).
    type: str
    aliases: [token]
  gather:
    description: What to check.
    type: list
    elements: str
    default: [health, agents]
    choices: [health, agents]
  workspace_namespace:
    description: Named in the remedy of a disconnected agent (where its pod runs).
    type: str
    default: ""
extends_documentation_fragment:
  - coderstack.platform.coder
author:
  - coderstack maintainers (@coderstack)
"""

EXAMPLES = r"""
- name: Coder's health is checked
  coderstack.platform.coder_health:
    coder_url: https://coder.example.com
    token_secret: coder-admin-token
  register: health

- name: Each verdict is shown
  ansible.builtin.debug:
    msg: "{{ health.checks | map(attribute='name') | zip(health.checks | map(attribute='severity')) | list }}"
"""

RETURN = r"""
severity:
  description: The worst severity of RV(checks).
  returned: always
  type: str
  sample: ok
checks:
  description: One verdict per check, each with C(name), C(severity) (ok, warning, error), C(message) and C(remedy).
  returned: always
  type: list
  elements: dict
  sample: [{"name": "Coder health: database", "severity": "ok", "message": "healthy", "remedy": ""}]
coder_version:
  description: The version the health report names.
  returned: when the report was read
  type: str
api_calls:
  description: Coder API calls made, per HTTP method.
  returned: always
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.coderstack.platform.plugins.module_utils.coder_health import (
    agent_checks,
    health_checks,
    unreachable_check,
    worst,
)
from ansible_collections.coderstack.platform.plugins.module_utils.coder_module import (
    api_calls,
    coder_argument_spec,
    coder_client,
    run_main,
    sanitize,
    secret_free,
    secrets_of,
)
from ansible_collections.coderstack.platform.plugins.module_utils.coder_transport import CoderError


def main():
    module = AnsibleModule(
        argument_spec=coder_argument_spec(
            gather={
                "type": "list",
                "elements": "str",
                "default": ["health", "agents"],
                "choices": ["health", "agents"],
            },
            workspace_namespace={"type": "str", "default": ""},
        ),
        supports_check_mode=True,
    )
    secret_free(module)  # its failures and warnings never carry a secret
    p = module.params
    client = coder_client(module, what="reading the health of %s" % p["coder_url"], retries=1)
    checks, result = [], {}
    try:
        if "health" in p["gather"]:
            report = client.health_report()
            result["coder_version"] = report.get("coder_version", "")
            checks.extend(health_checks(report))
        if "agents" in p["gather"]:
            checks.extend(agent_checks(client.list_workspaces(), p["workspace_namespace"]))
    except CoderError as e:
        if e.status in (401, 403):
            # Coder answered and refused the token (revoked, expired, or not an owner's)
            checks.append(
                {
                    "name": "Coder accepts the token",
                    "severity": "error",
                    "message": str(e),
                    "remedy": "the health report needs an owner's token: run playbooks/coder_admin.yml to renew it",
                }
            )
        else:  # no answer, a TLS failure, or the ingress's own 404/502/503 with nothing behind it
            checks.append(unreachable_check(p["coder_url"], e))
    checks = [dict(c, message=sanitize(c["message"], secrets_of(module))) for c in checks]
    module.exit_json(
        changed=False,
        severity=worst(c["severity"] for c in checks),
        checks=checks,
        api_calls=api_calls(client),
        **result,
    )


if __name__ == "__main__":
    run_main(main)
