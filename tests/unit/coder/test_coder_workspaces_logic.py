"""coder_workspaces: which build a workspace needs, and what a failed build or a silent agent tells the user.

The fake client answers each path from a script of Coder-shaped answers (and fails on any call not scripted), so a
test fails when the code makes a call it should not, or reads a field Coder does not send."""

from __future__ import annotations

import pytest
from ansible_collections.coderstack.platform.plugins.module_utils.coder_client import CoderClient, CoderError
from ansible_collections.coderstack.platform.plugins.module_utils.coder_workspaces import (
    WorkspaceError,
    Workspaces,
    current_state,
    parameter_changes,
    parameter_values,
    plan,
    readiness,
)
from helpers.fakes import FakeClock as Clock


def ws(status="running", transition="start", job="succeeded", agents=None, number=1):
    return {
        "id": "w1",
        "name": "dev",
        "owner_name": "carol",
        "template_name": "kubernetes-dind",
        "latest_build": {
            "id": f"b{number}",
            "build_number": number,
            "status": status,
            "transition": transition,
            "job": {"status": job, "error": "" if job != "failed" else "terraform apply failed"},
            "resources": [{"agents": agents or []}],
        },
    }


def agent(status="connected", lifecycle="ready", health="healthy"):
    return {
        "name": "main",
        "status": status,
        "lifecycle_state": lifecycle,
        "apps": [{"slug": "code-server", "health": health}],
    }


class ScriptedClient(CoderClient):
    """A CoderClient whose request() answers from a per-path queue of answers (dicts, lists, or CoderError to
    raise): the client's own methods build the paths."""

    def __init__(self, script):
        self.script = {k: list(v) for k, v in script.items()}
        self.calls = []

    def request(self, method, path, **kw):
        self.calls.append((method, path))
        queue = self.script.get((method, path))
        assert queue, f"unexpected call {method} {path}"
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


GET_WS = ("GET", "/api/v2/users/carol/workspace/dev")


@pytest.mark.parametrize(
    "workspace,state,changes,expected",
    [
        (None, "started", {}, "create"),
        (None, "stopped", {}, "create-stopped"),
        (None, "absent", {}, None),
        (ws(), "started", {}, None),
        (ws(), "started", {"cpu": ("2", "4")}, "start"),
        (ws(), "stopped", {}, "stop"),
        (ws(), "absent", {}, "delete"),
        (ws("stopped", "stop"), "started", {}, "start"),
        (ws("stopped", "stop"), "stopped", {}, None),
        (ws("failed", job="failed"), "started", {}, "start"),
        (ws("failed", job="failed"), "stopped", {}, "stop"),
        (ws("deleted", "delete"), "absent", {}, None),
    ],
)
def test_plan(workspace, state, changes, expected):
    assert plan(workspace, state, changes) == expected


def test_current_state_of_busy_builds():
    assert current_state(ws("starting", job="running")) == "busy"
    assert current_state(ws("pending", job="pending")) == "busy"
    assert current_state(None) == "absent"


def test_parameters_are_strings_and_only_differences_count():
    assert parameter_values({"memory": 4, "cpu": 2, "gpu": True}) == [
        {"name": "cpu", "value": "2"},
        {"name": "gpu", "value": "true"},
        {"name": "memory", "value": "4"},
    ]
    current = [{"name": "cpu", "value": "2"}, {"name": "memory", "value": "2"}, {"name": "image", "value": "x"}]
    assert parameter_changes(current, {"cpu": 2, "memory": 4}) == {"memory": ("2", "4")}
    assert parameter_changes(current, {"cpu": "2"}) == {}


def test_readiness_needs_connected_ready_agent_and_healthy_apps():
    assert readiness(ws(agents=[agent()]))[0] is True
    assert readiness(ws(agents=[agent(health="initializing")]))[0] is False
    assert readiness(ws(agents=[agent(health="initializing")]), apps=False)[0] is True
    assert readiness(ws(agents=[agent("connecting", "created")]))[:2] == (False, False)
    assert readiness(ws(agents=[agent(lifecycle="start_error")]))[1] is True
    assert readiness(ws(agents=[]))[2] == "no agent reported yet"


def test_failed_build_reports_the_provisioner_errors():
    logs = [
        {"output": "Terraform 1.10.6", "log_level": "info"},
        {"output": 'Error: pods "coder-carol-dev" is forbidden: exceeded quota', "log_level": "error"},
        {"output": '  on main.tf line 285, in resource "kubernetes_pod" "main":', "log_level": "error"},
    ]
    client = ScriptedClient(
        {
            GET_WS: [ws("starting", job="running"), ws("failed", job="failed")],
            ("GET", "/api/v2/workspacebuilds/b1/logs"): [logs],
        }
    )
    clock = Clock()
    svc = Workspaces(client, sleep=clock.sleep, clock=clock)
    with pytest.raises(WorkspaceError) as ei:
        svc.wait_build("carol", "dev", "workspace carol/dev", timeout=60)
    msg = str(ei.value)
    assert "build #1 (start) failed" in msg
    assert 'exceeded quota on main.tf line 285, in resource "kubernetes_pod" "main":' in msg
    assert ei.value.result["provisioner_log"][-1].startswith("  on main.tf")
    assert svc.timings["build_seconds"] == 0.5


def test_silent_agent_times_out_naming_the_agent_url_problem():
    client = ScriptedClient({GET_WS: [ws(agents=[agent("connecting", "created", "initializing")])]})
    clock = Clock()
    svc = Workspaces(client, sleep=clock.sleep, clock=clock)
    with pytest.raises(WorkspaceError) as ei:
        svc.wait_ready("carol", "dev", "workspace carol/dev", timeout=30)
    msg = str(ei.value)
    assert "not ready after 31s (agent main: connecting, created; app code-server: initializing)" in msg
    assert "/bin/coder-linux-amd64" in msg and "certificate" in msg


def test_ready_workspace_given_costs_no_call():
    client = ScriptedClient({})
    svc = Workspaces(client)
    got = svc.wait_ready("carol", "dev", "w", timeout=5, workspace=ws(agents=[agent()]))
    assert got["name"] == "dev" and client.calls == []


def test_agent_that_comes_up_is_timed():
    client = ScriptedClient(
        {
            GET_WS: [
                ws(agents=[agent("connecting", "created", "initializing")]),
                ws(agents=[agent("connected", "starting", "initializing")]),
                ws(agents=[agent()]),
            ]
        }
    )
    clock = Clock()
    svc = Workspaces(client, sleep=clock.sleep, clock=clock)
    svc.wait_ready("carol", "dev", "w", timeout=30)
    assert svc.timings == {"agent_connected_seconds": 1.0, "ready_seconds": 2.0}
    assert len(client.calls) == 3


def test_missing_template_is_named():
    client = ScriptedClient(
        {("GET", "/api/v2/organizations/default/templates/nope"): [CoderError("GET", "/x", 404, "not found")]}
    )
    with pytest.raises(WorkspaceError, match="template nope does not exist in organization default"):
        Workspaces(client).template("nope")


def test_absent_workspace_is_none_other_errors_raise():
    client = ScriptedClient({GET_WS: [CoderError("GET", "/x", 404, "Resource not found")]})
    assert Workspaces(client).get("carol", "dev") is None
    client = ScriptedClient({GET_WS: [CoderError("GET", "/x", 401, "unauthorized")]})
    with pytest.raises(CoderError):
        Workspaces(client).get("carol", "dev")


def opts(**kw):
    p = {"owner": "carol", "name": "dev", "template": None, "parameters": {}, "state": "started", "update": False}
    p.update(wait=True, wait_timeout=60, wait_for_apps=True, ttl_ms=None)
    p.update(kw)
    return p


def test_plan_reads_only_and_names_the_build():
    failed = dict(ws("failed", job="failed"), template_active_version_id="v2")
    client = ScriptedClient({GET_WS: [failed]})
    wplan = Workspaces(client).plan(opts())
    assert (wplan.action, wplan.version) == ("start", "v2") and client.calls == [GET_WS]
    client = ScriptedClient({GET_WS: [dict(ws(), outdated=True, template_active_version_id="v3")]})
    assert Workspaces(client).plan(opts()).action is None
    assert (Workspaces(client).plan(opts(update=True)).action, "v3") == ("start", "v3")
    client = ScriptedClient({GET_WS: [CoderError("GET", "/x", 404, "Resource not found")]})
    with pytest.raises(WorkspaceError, match="workspace carol/dev does not exist: set template to create it"):
        Workspaces(client).plan(opts())
    assert Workspaces(client).plan(opts(template="kubernetes-dind", state="stopped")).action == "create-stopped"
