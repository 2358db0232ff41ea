#!/usr/bin/python
# Copyright: coderstack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Read several Kubernetes objects or lists in one module run."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: k8s_read
short_description: Read several Kubernetes objects or lists in one module run
description:
  - Reads each entry of O(objects) (one object by name, or a list by namespace and label selectors) through the
    C(kubernetes.core) client, and returns them under the entry's key in the shape of
    M(kubernetes.core.k8s_info) (C(resources), a list).
  - A role's reads then cost one module run instead of one per object, which is most of an unchanged re-run's time.
  - Read-only; never changes the cluster. An object that does not exist is an empty C(resources) list.
  - Secrets come back with their keys only, every value empty, so the result carries no secret and needs no
    C(no_log). Read the values of a Secret with M(kubernetes.core.k8s_info) under C(no_log) where they are needed.
options:
  objects:
    description:
      - What to read, by a key of your choice (the key of the result).
      - Each value has C(kind) (required), C(api_version) (default C(v1)), C(name) (one object; omitted = a list),
        C(namespace) (omitted for cluster-scoped kinds, or to list every namespace) and C(label_selectors)
        (a list of selectors, for lists).
      - An entry that is null or empty is not read (its C(resources) is empty), so a read that depends on the
        inventory keeps its key.
    type: dict
    required: true
extends_documentation_fragment:
  - coderstack.platform.kube
author:
  - coderstack maintainers (@coderstack)
"""

EXAMPLES = r"""
- name: The TLS Secret, the Service and the Nodes are read
  coderstack.platform.k8s_read:
    objects:
      tls: {kind: Secret, namespace: coder, name: coder-tls}
      service: {kind: Service, namespace: coder, name: coder}
      nodes: {kind: Node}
  register: reads

- name: The Service exists
  ansible.builtin.assert:
    that: reads.objects.service.resources | length == 1
"""

RETURN = r"""
objects:
  description: For each key of O(objects), C(resources) (the objects read; empty when none exists).
  returned: success
  type: dict
  sample: {"service": {"resources": [{"kind": "Service", "metadata": {"name": "coder"}}]}}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.coderstack.platform.plugins.module_utils.kube import (
    KUBE_CONNECTION_SPEC,
    KubeError,
    NotFoundError,
    api_client,
)

ENTRY_KEYS = {"kind", "api_version", "name", "namespace", "label_selectors"}


def entry_problems(key: str, entry) -> list[str]:
    """What is wrong with one entry of ``objects`` (empty when it is usable)."""
    if not isinstance(entry, dict):
        return [f"objects.{key} must be a dict with kind (and api_version, name, namespace, label_selectors)"]
    problems = []
    unknown = sorted(set(entry) - ENTRY_KEYS)
    if unknown:
        problems.append(f"objects.{key} has unknown keys {unknown} (known: {sorted(ENTRY_KEYS)})")
    if not isinstance(entry.get("kind"), str) or not entry.get("kind"):
        problems.append(f"objects.{key}.kind is required (e.g. Secret)")
    selectors = entry.get("label_selectors", [])
    if not isinstance(selectors, list) or not all(isinstance(s, str) for s in selectors):
        problems.append(f"objects.{key}.label_selectors must be a list of strings")
    if entry.get("name") and selectors:
        problems.append(f"objects.{key}: name and label_selectors exclude each other")
    return problems


def without_secret_values(obj: dict) -> dict:
    """A Secret's keys, every value empty; other objects as they are, without metadata.managedFields."""
    obj = dict(obj)
    meta = dict(obj.get("metadata") or {})
    meta.pop("managedFields", None)
    obj["metadata"] = meta
    if obj.get("kind") == "Secret":
        for field in ("data", "stringData"):
            if obj.get(field):
                obj[field] = dict.fromkeys(obj[field], "")
    return obj


def read(client, entry: dict) -> list[dict]:
    """The objects one entry names: [the object] or [] by name, else the list's items."""
    api = client.resources.get(api_version=entry.get("api_version") or "v1", kind=entry["kind"])
    namespace = entry.get("namespace") or None
    if entry.get("name"):
        try:
            obj = api.get(name=entry["name"], namespace=namespace).to_dict()
        except NotFoundError:
            return []
        return [without_secret_values(obj)]
    selector = ",".join(entry.get("label_selectors") or []) or None
    listed = api.get(namespace=namespace, label_selector=selector).to_dict()
    kind = entry["kind"]
    return [without_secret_values({"kind": kind, **item}) for item in listed.get("items") or []]


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "objects": {"type": "dict", "required": True},
            **KUBE_CONNECTION_SPEC,
        },
        supports_check_mode=True,
    )
    objects = module.params["objects"]
    problems = [p for key, entry in objects.items() if entry for p in entry_problems(key, entry)]
    if problems:
        module.fail_json(msg="; ".join(problems))
    try:
        client = api_client(module.params["kubeconfig"], module.params["context"])
    except KubeError as e:
        module.fail_json(msg=str(e))
    result = {}
    for key, entry in objects.items():
        if not entry:
            result[key] = {"resources": []}
            continue
        try:
            result[key] = {"resources": read(client, entry)}
        except Exception as e:  # noqa: BLE001 - the API's reason, named with what was read
            where = "/".join(x for x in (entry.get("namespace"), entry.get("name")) if x)
            module.fail_json(msg=f"reading objects.{key} ({entry['kind']} {where or 'list'}) failed: {e}")
    module.exit_json(changed=False, objects=result)


if __name__ == "__main__":
    main()
