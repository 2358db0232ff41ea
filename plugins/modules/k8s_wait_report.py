#!/usr/bin/python
# Copyright: coderstack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Describe a Kubernetes object (conditions, status, recent events) after a wait failed, then fail."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: k8s_wait_report
short_description: Explain why a Kubernetes object did not become ready, like C(kubectl describe)
description:
  - Reads one object, its C(status.conditions) and the most recent events about it (and, for workload
    kinds, about the Pods and PersistentVolumeClaims they own) and fails with all of it in one message.
  - Meant for the C(rescue) of a block whose C(wait) timed out, so every role reports a stuck object the
    same way instead of copying a describe step.
  - Read-only; never changes the cluster.
options:
  kind:
    description: Kind of the object (C(StatefulSet), C(Deployment), C(PersistentVolumeClaim), ...).
    type: str
    required: true
  api_version:
    description: apiVersion of the object.
    type: str
    default: v1
  name:
    description: Name of the object.
    type: str
    required: true
  namespace:
    description: Namespace of the object; omit for cluster-scoped kinds.
    type: str
  reason:
    description: What was being waited for; the first line of the failure message.
    type: str
    default: the object did not become ready
  events:
    description: How many recent events to include.
    type: int
    default: 10
  fail:
    description: Fail with the report (default) or return it in C(report) and succeed.
    type: bool
    default: true
extends_documentation_fragment:
  - coderstack.platform.kube
author:
  - coderstack maintainers (@coderstack)
"""

EXAMPLES = r"""
- name: PostgreSQL StatefulSet is ready
  block:
    - name: Wait for the StatefulSet
      kubernetes.core.k8s_info:
        kind: StatefulSet
        name: coder-db
        namespace: coder
        wait: true
        wait_timeout: 300
  rescue:
    - name: Report why the StatefulSet is not ready
      coderstack.platform.k8s_wait_report:
        api_version: apps/v1
        kind: StatefulSet
        name: coder-db
        namespace: coder
        reason: StatefulSet coder/coder-db was not ready after 300s
"""

RETURN = r"""
report:
  description: The report (also the failure message when I(fail=true)).
  returned: always
  type: str
conditions:
  description: The object's status.conditions.
  returned: always
  type: list
  elements: dict
events:
  description: The most recent events (newest last) about the object and what it owns.
  returned: always
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.coderstack.platform.plugins.module_utils.kube import (
    KUBE_CONNECTION_SPEC,
    NotFoundError,
    api_client,
)

WORKLOAD_KINDS = {"StatefulSet", "Deployment", "DaemonSet", "ReplicaSet", "Job"}


def _event_time(event: dict) -> str:
    return str(event.get("lastTimestamp") or event.get("eventTime") or event.get("firstTimestamp") or "")


def _format_event(event: dict) -> str:
    obj = event.get("involvedObject") or {}
    return (
        f"  {_event_time(event)} {event.get('type', '')} {event.get('reason', '')} "
        f"{obj.get('kind', '')}/{obj.get('name', '')}: {(event.get('message') or '').strip()}"
    )


def _summary(obj: dict) -> list[str]:
    status = obj.get("status") or {}
    keys = ("phase", "replicas", "readyReplicas", "availableReplicas", "updatedReplicas", "currentReplicas")
    shown = [f"{k}={status[k]}" for k in keys if k in status]
    return [f"status: {' '.join(shown)}"] if shown else []


def _container_states(pod: dict) -> list[str]:
    """Why each container of a pod is not running: waiting reason, or exit code, reason and message (with
    terminationMessagePolicy FallbackToLogsOnError, the message is the last lines of its log)."""
    lines = []
    status = pod.get("status") or {}
    for c in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
        state = c.get("state") or {}
        waiting, done = state.get("waiting"), state.get("terminated")
        if waiting:
            lines.append(f"    {c.get('name')}: waiting {waiting.get('reason', '')} {waiting.get('message', '') or ''}")
        elif done and done.get("exitCode", 0) != 0:
            msg = (done.get("message") or "").strip().replace("\n", " | ")
            lines.append(f"    {c.get('name')}: exited {done.get('exitCode')} {done.get('reason', '')} {msg}")
    return lines


def build_report(module: AnsibleModule, client) -> dict:
    """The report, from kubernetes.core's client (its ``resources`` is the dynamic client's)."""
    p = module.params
    api = client.resources.get(api_version=p["api_version"], kind=p["kind"])
    where = f"{p['namespace']}/{p['name']}" if p["namespace"] else p["name"]
    lines = [f"{p['reason']}", f"{p['kind']} {where}:"]
    try:
        obj = api.get(name=p["name"], namespace=p["namespace"]).to_dict()
    except NotFoundError:
        obj = None
        lines.append("  the object does not exist")
    conditions = ((obj or {}).get("status") or {}).get("conditions") or []
    if obj is not None:
        lines += ["  " + line for line in _summary(obj)]
        if conditions:
            lines.append("  conditions:")
            for c in conditions:
                lines.append(
                    f"    {c.get('type')}={c.get('status')} reason={c.get('reason', '')} {c.get('message', '') or ''}"
                )
        else:
            lines.append("  conditions: none reported")

    names = {(p["kind"], p["name"])}
    events_api = client.resources.get(api_version="v1", kind="Event")
    if p["namespace"]:
        # Pods and PVCs of a workload carry the workload's name as a prefix.
        if p["kind"] in WORKLOAD_KINDS:
            for kind in ("Pod", "PersistentVolumeClaim", "ReplicaSet"):
                sub = client.resources.get(api_version="apps/v1" if kind == "ReplicaSet" else "v1", kind=kind)
                for item in sub.get(namespace=p["namespace"]).to_dict().get("items", []):
                    n = item["metadata"]["name"]
                    if n.startswith(p["name"] + "-") or f"-{p['name']}-" in n:
                        names.add((kind, n))
                        states = _container_states(item) if kind == "Pod" else []
                        if states:
                            lines += [f"  pod {n} (phase {(item.get('status') or {}).get('phase', '?')}):", *states]
        all_events = events_api.get(namespace=p["namespace"]).to_dict().get("items", [])
    else:
        all_events = events_api.get(field_selector=f"involvedObject.name={p['name']}").to_dict().get("items", [])
    events = [
        e
        for e in all_events
        if ((e.get("involvedObject") or {}).get("kind"), (e.get("involvedObject") or {}).get("name")) in names
    ]
    events.sort(key=_event_time)
    events = events[-p["events"] :] if p["events"] > 0 else []
    lines.append("  recent events:" if events else "  recent events: none")
    lines += [_format_event(e) for e in events]
    return {"report": "\n".join(lines), "conditions": conditions, "events": events}


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "kind": {"type": "str", "required": True},
            "api_version": {"type": "str", "default": "v1"},
            "name": {"type": "str", "required": True},
            "namespace": {"type": "str"},
            **KUBE_CONNECTION_SPEC,
            "reason": {"type": "str", "default": "the object did not become ready"},
            "events": {"type": "int", "default": 10},
            "fail": {"type": "bool", "default": True},
        },
        supports_check_mode=True,
    )
    try:
        client = api_client(module.params["kubeconfig"], module.params["context"])
        result = build_report(module, client)
    except Exception as exc:  # noqa: BLE001 - the report must never hide the original failure
        result = {
            "report": f"{module.params['reason']}\n(could not describe {module.params['kind']} "
            f"{module.params['name']}: {exc})",
            "conditions": [],
            "events": [],
        }
    if module.params["fail"]:
        module.fail_json(msg=result["report"], changed=False, **{k: v for k, v in result.items() if k != "report"})
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
