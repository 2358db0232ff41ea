# -*- coding: utf-8 -*-
# Copyright: coderstack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Coder workspaces through a CoderClient (its workspace methods): read, plan, build, wait.

A workspace is reconciled in two steps:

* :func:`plan` compares what Coder has (the workspace, its latest build and, when parameters are managed, that
  build's parameter values) with what is wanted (``started``, ``stopped`` or ``absent``, rich parameters) and
  returns the one build to run (``create``, ``start``, ``stop``, ``delete``) or ``None``;
* :class:`Workspaces` runs it and waits: first for the build's provisioner job, then, for a started workspace, for
  every agent to be ``connected`` and ``ready`` and every app with a health check to be ``healthy``.

Waiting prints progress through ``log`` (the module's log) and ends, on failure, with what the user needs: the
provisioner's error lines for a failed build, the agents' and apps' states (and what usually causes them) for a
workspace that never became reachable.
"""

import time

from ansible_collections.coderstack.platform.plugins.module_utils.coder_templates import log_tail, terraform_errors
from ansible_collections.coderstack.platform.plugins.module_utils.coder_transport import CoderError
from ansible_collections.coderstack.platform.plugins.module_utils.waiter import AGAIN, poll

BUILD_TERMINAL = ("succeeded", "failed", "canceled")
BUSY_STATUSES = ("pending", "starting", "stopping", "deleting", "canceling")
AGENT_FAILED_LIFECYCLES = ("start_error", "start_timeout", "shutdown_error", "shutdown_timeout")


class WorkspaceError(Exception):
    """A build failed or a wait timed out; ``result`` carries what the module returns beside ``msg``."""

    def __init__(self, msg, **result):
        super().__init__(msg)
        self.result = result


# ------------------------------------------------------------------------------------------------ pure logic
def parameter_values(params):
    """``{name: value}`` -> Coder's ``[{"name", "value"}]`` (values are strings in Coder's API)."""
    out = []
    for name in sorted(params or {}):
        value = params[name]
        if isinstance(value, bool):
            value = "true" if value else "false"
        out.append({"name": name, "value": str(value)})
    return out


def parameter_changes(current, wanted):
    """The wanted parameters whose value differs from the build's: ``{name: (before, after)}``."""
    have = {p.get("name"): p.get("value") for p in current or []}
    changes = {}
    for p in parameter_values(wanted):
        if have.get(p["name"]) != p["value"]:
            changes[p["name"]] = (have.get(p["name"]), p["value"])
    return changes


def current_state(workspace):
    """``absent`` | ``started`` | ``stopped`` | ``failed`` | ``busy`` for a workspace object (or None)."""
    if not workspace:
        return "absent"
    build = workspace.get("latest_build") or {}
    status = build.get("status")
    if status in BUSY_STATUSES:
        return "busy"
    if build.get("transition") == "delete" and status == "deleted":
        return "absent"
    if status == "running":
        return "started"
    if status == "stopped":
        return "stopped"
    return "failed"  # failed, canceled


def plan(workspace, state, changes=None):
    """The build that makes ``workspace`` (None = does not exist) reach ``state``; None when nothing is to do."""
    now = current_state(workspace)
    if state == "absent":
        return None if now == "absent" else "delete"
    if now == "absent":
        return "create" if state == "started" else "create-stopped"
    if state == "stopped":
        return None if now == "stopped" else "stop"
    if now in ("stopped", "failed") or changes:
        return "start"
    return None


def agents_of(workspace):
    """The agents of the latest build, with the fields a user checks."""
    out = []
    for res in (workspace.get("latest_build") or {}).get("resources") or []:
        for agent in res.get("agents") or []:
            out.append(
                {
                    "name": agent.get("name"),
                    "status": agent.get("status"),
                    "lifecycle_state": agent.get("lifecycle_state"),
                    "version": agent.get("version"),
                    "apps": [
                        {"slug": a.get("slug"), "health": a.get("health"), "subdomain": a.get("subdomain", False)}
                        for a in agent.get("apps") or []
                    ],
                }
            )
    return out


def readiness(workspace, apps=True):
    """``(ready, failed, summary)``: every agent connected and ready, every health-checked app healthy."""
    agents = agents_of(workspace)
    if not agents:
        return False, False, "no agent reported yet"
    parts, ready, failed = [], True, False
    for a in agents:
        parts.append(f"agent {a['name']}: {a['status']}, {a['lifecycle_state']}")
        if a["lifecycle_state"] in AGENT_FAILED_LIFECYCLES:
            failed = True
        if a["status"] != "connected" or a["lifecycle_state"] != "ready":
            ready = False
        for app in a["apps"] if apps else []:
            parts.append(f"app {app['slug']}: {app['health']}")
            if app["health"] not in ("healthy", "disabled"):
                ready = False
    return ready, failed, "; ".join(parts)


def workspace_view(workspace):
    if not workspace:
        return {}
    build = workspace.get("latest_build") or {}
    return {
        "id": workspace.get("id"),
        "name": workspace.get("name"),
        "owner": workspace.get("owner_name"),
        "template": workspace.get("template_name"),
        "state": current_state(workspace),
        "status": build.get("status"),
        "transition": build.get("transition"),
        "build_number": build.get("build_number"),
        "template_version_id": build.get("template_version_id"),
        "outdated": workspace.get("outdated"),
        "agents": agents_of(workspace),
    }


def workspace_diff(ws, state, params, changes):
    """The --diff of a workspace: its state and, when parameters are managed, their values before and after."""
    before = {"state": current_state(ws)}
    after = {"state": state}
    if params:
        before["parameters"] = {k: v[0] for k, v in changes.items()}
        after["parameters"] = {p["name"]: p["value"] for p in parameter_values(params)}
    return {"before": before, "after": after}


class WorkspacePlan:
    """The build that reconciles a workspace: ``action`` (None, create, create-stopped, start, stop, delete), the
    template ``version`` to build with (None = the workspace's own), the parameter ``changes``, and ``ws``."""

    def __init__(self, ws, action, version, changes):
        self.ws = ws
        self.action = action
        self.version = version
        self.changes = changes


# ------------------------------------------------------------------------------------------------ API work
class Workspaces:
    """Read, build and wait for one owner's workspaces."""

    def __init__(self, client, organization="default", log=None, sleep=time.sleep, clock=time.monotonic):
        self.client = client
        self.org = organization or "default"
        self.progress = []
        self.timings = {}
        self._log = log
        self._sleep = sleep
        self._clock = clock
        self._t0 = clock()  # timings are seconds since this object was made (the module's start)

    def since_start(self):
        return round(self._clock() - self._t0, 1)

    def note(self, text):
        self.progress.append(text)
        if self._log:
            self._log(text)

    # --- reads and writes (the CoderClient's workspace methods)
    def get(self, owner, name):
        return self.client.get_workspace(owner, name)

    def template(self, name):
        template = self.client.get_template(self.org, name)
        if template is None:
            raise WorkspaceError(
                f"template {name} does not exist in organization {self.org}: push it first "
                "(playbooks/templates.yml, the coder_template module)"
            )
        return template

    def build_parameters(self, build_id):
        return self.client.workspace_build_parameters(build_id)

    def create(self, owner, name, template_id, params, ttl_ms=None):
        return self.client.create_workspace(owner, name, template_id, parameter_values(params), ttl_ms)

    def build(self, workspace_id, transition, params=None, template_version_id=None):
        values = parameter_values(params) if params else None
        return self.client.create_workspace_build(workspace_id, transition, values, template_version_id)

    # --- plan and apply (coder_workspace)
    def plan(self, p):
        """Read the workspace (waiting for a build another client started) and decide the build: a
        :class:`WorkspacePlan`. ``p``: coder_workspace's options."""
        owner, name, what = p["owner"], p["name"], f"workspace {p['owner']}/{p['name']}"
        ws = self.get(owner, name)
        if current_state(ws) == "busy":  # a build another client started: let it end before deciding
            ws = self.wait_build(owner, name, what, p["wait_timeout"]) if p["wait"] else ws
        changes = {}
        if ws and p["parameters"] and p["state"] == "started" and current_state(ws) == "started":
            changes = parameter_changes(self.build_parameters(ws["latest_build"]["id"]), p["parameters"])
        action = plan(ws, p["state"], changes)
        version = None
        if action is None and p["update"] and p["state"] == "started" and ws and ws.get("outdated"):
            action, version = "start", ws.get("template_active_version_id")
        elif action == "start" and current_state(ws) == "failed":
            version = ws.get("template_active_version_id")  # a failed workspace retries with the fixed template
        if action in ("create", "create-stopped") and not p["template"]:
            raise WorkspaceError(f"{what} does not exist: set template to create it")
        return WorkspacePlan(ws, action, version, changes)

    def apply(self, p, wplan):
        """Run the plan's build and wait as asked (for a started workspace, also for its agents and apps);
        returns the workspace after it."""
        owner, name, what = p["owner"], p["name"], f"workspace {p['owner']}/{p['name']}"
        ws = wplan.ws
        if wplan.action:
            ws = self._run(p, ws, wplan.action, wplan.version)
        if p["state"] == "started" and p["wait"] and ws:
            ws = self.wait_ready(owner, name, what, p["wait_timeout"], apps=p["wait_for_apps"], workspace=ws)
        return ws

    def _run(self, p, ws, action, template_version_id=None):
        """Run ``action`` and wait for its build as asked; returns the workspace after it."""
        owner, name, what = p["owner"], p["name"], f"workspace {p['owner']}/{p['name']}"
        if action in ("create", "create-stopped"):
            template = self.template(p["template"])
            ws = self.create(owner, name, template["id"], p["parameters"], p["ttl_ms"])
            self.note(f"{what}: created from template {p['template']}")
        else:
            transition = action  # start, stop or delete: the build transition of the same name
            self.build(ws["id"], transition, p["parameters"] if action == "start" else None, template_version_id)
            self.note(f"{what}: {transition} build queued")
        if not p["wait"]:
            return self.get(owner, name)
        ws = self.wait_build(owner, name, what, p["wait_timeout"])
        if action == "create-stopped":
            self.build(ws["id"], "stop")
            ws = self.wait_build(owner, name, what, p["wait_timeout"])
        return ws

    # --- waits
    def wait_build(self, owner, name, what, timeout):
        """Poll the workspace until its latest build's job ends; a failed job raises with the provisioner's errors."""
        last = [None]

        def check(ws, waited):
            if ws is None:  # a finished delete build hides the workspace
                self.note(f"{what}: workspace gone after {waited:.1f}s")
                self.timings["build_seconds"] = self.since_start()
                return None
            build = ws.get("latest_build") or {}
            job = build.get("job") or {}
            status = job.get("status")
            if last[-1:] != [status]:
                self.note(f"{what}: build #{build.get('build_number')} {status} after {waited:.1f}s")
                last.append(status)
            if status in BUILD_TERMINAL:
                self.timings["build_seconds"] = self.since_start()
                if status != "succeeded":
                    raise self._build_failure(what, ws, build, job)
                return ws
            if waited > timeout:
                raise WorkspaceError(
                    f"{what}: build #{build.get('build_number')} is still {status} after {timeout}s (is a provisioner "
                    "daemon running? Coder's built-in provisioners need CODER_PROVISIONER_DAEMONS > 0); raise "
                    "wait_timeout for slow builds",
                    workspace=workspace_view(ws),
                )
            return AGAIN

        return poll(lambda: self.get(owner, name), check, self._sleep, self._clock, delay=0.5, max_delay=3.0)

    def _build_failure(self, what, ws, build, job):
        try:
            lines = log_tail(self.client.workspace_build_logs(build["id"]))
        except CoderError:
            lines = []
        errors = terraform_errors(lines)
        detail = "; ".join(errors) if errors else (job.get("error") or "no error text")
        return WorkspaceError(
            f"{what}: build #{build.get('build_number')} ({build.get('transition')}) {job.get('status')}: {detail}",
            workspace=workspace_view(ws),
            provisioner_log=lines,
        )

    def wait_ready(self, owner, name, what, timeout, apps=True, workspace=None):
        """Poll until every agent is connected and ready and, with ``apps``, every health-checked app is healthy.
        ``workspace``: the object just read (checked first, without another call)."""
        last, connected_once = [None], []

        def check(ws, waited):
            if ws is None:
                raise WorkspaceError(f"{what}: the workspace disappeared while waiting for its agent")
            ready, failed, summary = readiness(ws, apps=apps)
            agents = agents_of(ws)
            if not connected_once and agents and all(a["status"] == "connected" for a in agents):
                connected_once.append(True)
                self.timings["agent_connected_seconds"] = self.since_start()
            if last[-1:] != [summary]:
                self.note(f"{what}: {summary} after {waited:.1f}s")
                last.append(summary)
            if ready:
                self.timings["ready_seconds"] = self.since_start()
                return ws
            if failed or waited > timeout:
                raise WorkspaceError(
                    f"{what}: not ready after {waited:.0f}s ({summary}). {self._hint(ws)}",
                    workspace=workspace_view(ws),
                )
            return AGAIN

        return poll(
            lambda: self.get(owner, name), check, self._sleep, self._clock, delay=1.0, max_delay=1.0, first=workspace
        )

    @staticmethod
    def _hint(ws):
        agents = agents_of(ws)
        if not agents or any(a["status"] in ("connecting", "timeout") for a in agents):
            return (
                "The agent never connected: it downloads /bin/coder-linux-amd64 from the URL its init script names "
                "(the access URL, or the template's coder_internal_url) and connects there; check from the "
                "workspace pod (kubectl logs) that this URL resolves and that its certificate is trusted (the "
                "template's CA bundle), or run the templates role's agent URL probe"
            )
        if any(a["lifecycle_state"] in AGENT_FAILED_LIFECYCLES for a in agents):
            return "The agent's startup script failed: read its log in the workspace (/tmp/coder-startup-script.log)"
        return (
            "An app's health check does not answer: read the app's own log in the workspace (e.g. "
            "/tmp/bootstrap.log for code-server in kubernetes-dind)"
        )
