"""coder_health's verdicts from Coder's health report and workspaces list (shapes as Coder 2.36 answers them)."""

from __future__ import annotations

from ansible_collections.coderstack.platform.plugins.module_utils.coder_health import (
    agent_checks,
    health_checks,
    unreachable_check,
    worst,
)
from ansible_collections.coderstack.platform.plugins.module_utils.coder_transport import CoderError

HEALTHY = {
    key: {"severity": "ok", "warnings": [], "dismissed": False}
    for key in ("access_url", "database", "derp", "websocket", "provisioner_daemons", "workspace_proxy")
}


def test_a_healthy_report_is_six_ok_verdicts_without_remedies():
    checks = health_checks(HEALTHY)
    assert [c["severity"] for c in checks] == ["ok"] * 6
    assert all(c["remedy"] == "" for c in checks)
    assert worst(c["severity"] for c in checks) == "ok"


def test_a_failing_section_names_its_error_warning_code_and_the_docs():
    report = dict(HEALTHY)
    report["database"] = {
        "severity": "error",
        "error": "ping: connection refused",
        "warnings": [{"code": "EDB02", "message": "database latency is high"}],
    }
    db = next(c for c in health_checks(report) if c["name"] == "Coder health: database")
    assert db["severity"] == "error"
    assert db["message"] == "ping: connection refused; EDB02: database latency is high"
    assert "PostgreSQL" in db["remedy"] and db["remedy"].endswith("health-check#edb02")
    assert worst(c["severity"] for c in health_checks(report)) == "error"


def test_a_dismissed_section_is_ok():
    report = dict(
        HEALTHY, derp={"severity": "warning", "warnings": [{"code": "EDERP01", "message": "x"}], "dismissed": True}
    )
    derp = next(c for c in health_checks(report) if c["name"] == "Coder health: DERP relay")
    assert derp["severity"] == "ok"


def _ws(name, status, transition="start", build="running"):
    agent = {"name": "main", "status": status, "lifecycle_state": "ready", "last_connected_at": "2026-12-07T10:00:00Z"}
    return {
        "id": "w-" + name,
        "name": name,
        "owner_name": "carol",
        "latest_build": {"status": build, "transition": transition, "resources": [{"agents": [agent]}]},
    }


def test_only_running_workspaces_with_an_agent_not_connected_are_reported():
    checks = agent_checks(
        [
            _ws("ok", "connected"),
            _ws("gone", "disconnected"),
            _ws("slow", "connecting"),
            _ws("stopped", "disconnected", transition="stop", build="stopped"),
        ],
        "coder-workspaces",
    )
    assert [(c["name"], c["severity"]) for c in checks] == [
        ("workspace agent carol/gone.main", "error"),
        ("workspace agent carol/slow.main", "warning"),
    ]
    assert "agent disconnected" in checks[0]["message"]
    assert (
        "kubectl -n coder-workspaces get pods" in checks[0]["remedy"]
        and "com.coder.workspace.id=w-gone" in checks[0]["remedy"]
    )


def test_no_answer_and_an_untrusted_certificate_are_told_apart():
    down = unreachable_check(
        "https://c.example", CoderError("GET", "/api/v2/debug/health", message="connection refused")
    )
    assert down["name"] == "Coder answers" and "scaled to 0" in down["remedy"]
    tls = CoderError("GET", "/api/v2/debug/health", message="[SSL: CERTIFICATE_VERIFY_FAILED] certificate has expired")
    bad = unreachable_check("https://c.example", tls)
    assert bad["name"] == "Coder's certificate is trusted" and bad["severity"] == "error"
    assert "certificate has expired" in bad["message"]
