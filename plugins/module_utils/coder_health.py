# Copyright: coderstack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Verdicts from Coder's own health report and its workspaces' agents (the doctor's Coder part).

``health_checks`` turns ``GET /api/v2/debug/health`` (codersdk/healthsdk HealthcheckReport) into one verdict per
section, ``agent_checks`` turns the workspaces list into one verdict per running workspace whose agent is not
connected, and ``unreachable_check`` turns a failed request into the verdict "Coder does not answer". A verdict is a
dict ``name``, ``severity`` (``ok``, ``warning``, ``error``), ``message``, ``remedy``. No API call is made here.
"""

DOCS = "https://coder.com/docs/admin/monitoring/health-check"
SEVERITIES = ("ok", "warning", "error")
# report section -> (what it checks, what to look at when it fails)
SECTIONS = (
    ("access_url", "access URL", "Coder reaches its own access URL: check CODER_ACCESS_URL, DNS and the ingress"),
    ("database", "database", "Coder reaches PostgreSQL: check the database pod or server and the coder-db-url Secret"),
    ("derp", "DERP relay", "workspace connections relay through Coder (DERP): check the websocket path of the ingress"),
    ("websocket", "websockets", "the ingress passes websockets to Coder (Upgrade and Connection headers)"),
    ("provisioner_daemons", "provisioners", "a provisioner runs and matches Coder's version (builds wait otherwise)"),
    ("workspace_proxy", "workspace proxies", "the workspace proxies are reachable and healthy"),
)


def worst(severities):
    """The most severe of ``severities`` (``ok`` when empty)."""
    ranked = [SEVERITIES.index(s) for s in severities if s in SEVERITIES]
    return SEVERITIES[max(ranked)] if ranked else "ok"


def _messages(section):
    msgs = []
    if section.get("error"):
        msgs.append(str(section["error"]))
    for w in section.get("warnings") or []:
        code = (w.get("code") or "").strip()
        msgs.append(("{}: {}".format(code, w.get("message", ""))) if code else str(w.get("message", "")))
    return msgs


def _codes(section):
    return [w.get("code") for w in section.get("warnings") or [] if w.get("code")]


def health_checks(report):
    """One verdict per section of Coder's health report; a dismissed section (an admin silenced it in Coder) is ok."""
    checks = []
    for key, what, remedy in SECTIONS:
        section = report.get(key) or {}
        severity = section.get("severity") or "ok"
        if section.get("dismissed"):
            severity = "ok"
        msgs = _messages(section)
        codes = _codes(section)
        if severity != "ok" and codes:
            remedy = f"{remedy}; see {DOCS}#{codes[0].lower()}"
        checks.append(
            {
                "name": "Coder health: " + what,
                "severity": severity if severity in SEVERITIES else "error",
                "message": "; ".join(msgs) if msgs else ("healthy" if severity == "ok" else severity),
                "remedy": "" if severity == "ok" else remedy,
            }
        )
    return checks


def _agents(workspace):
    build = workspace.get("latest_build") or {}
    for res in build.get("resources") or []:
        yield from res.get("agents") or []


def agent_checks(workspaces, namespace_hint=""):
    """Running workspaces whose agent is not connected (the commonest support question: "agent stuck connecting")."""
    checks = []
    for ws in workspaces:
        build = ws.get("latest_build") or {}
        if build.get("status") != "running" or build.get("transition") != "start":
            continue
        owner = ws.get("owner_name") or ws.get("owner_id", "?")
        for agent in _agents(ws):
            status = agent.get("status")
            if status == "connected":
                continue
            where = f" -n {namespace_hint}" if namespace_hint else ""
            checks.append(
                {
                    "name": "workspace agent {}/{}.{}".format(owner, ws.get("name"), agent.get("name")),
                    "severity": "error" if status in ("disconnected", "timeout") else "warning",
                    "message": "agent {} (lifecycle {}, last connected {})".format(
                        status, agent.get("lifecycle_state", "?"), agent.get("last_connected_at") or "never"
                    ),
                    "remedy": "the workspace's pod: kubectl{} get pods -l com.coder.workspace.id={}; its log "
                    "shows whether the agent could download /bin/coder-linux-amd64 from the agent URL and connect "
                    "(DNS, TLS trust, egress), its events whether it runs at all".format(where, ws.get("id", "?")),
                }
            )
    return checks


def unreachable_check(url, err):
    """The verdict for a request that got no usable answer; a TLS failure says it is the certificate."""
    text = str(err)
    if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
        remedy = (
            "Coder's certificate is not trusted by the CA this run uses (expired, another CA, or a name it does not "
            "cover): compare the TLS Secret with the exported CA; the ingress role renews and re-exports them"
        )
        name = "Coder's certificate is trusted"
    else:
        remedy = (
            "Coder does not answer: is its Deployment scaled to 0 or its pod not Ready (see the pods below), is the "
            f"ingress up, does {url} resolve from here"
        )
        name = "Coder answers"
    return {"name": name, "severity": "error", "message": f"{url}: {text}", "remedy": remedy}
