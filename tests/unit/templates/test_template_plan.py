"""TemplateSync.plan reads only (the template, its active version, and on a change what that version holds) and
apply does exactly the writes the plan calls for, through the CoderClient's template methods."""

from __future__ import annotations

import pytest
from ansible_collections.coderstack.platform.plugins.module_utils import coder_templates as ct
from ansible_collections.coderstack.platform.plugins.module_utils.coder_client import CoderClient
from helpers.fakes import FakeClock as Clock


class FakeClient(CoderClient):
    """A CoderClient whose request() answers from a dict of (method, path) -> answer and records the calls."""

    def __init__(self, answers):
        self.answers = answers
        self.log = []

    def request(self, method, path, **kw):
        self.log.append((method, path))
        key = (method, path)
        assert key in self.answers, f"unexpected call {method} {path}"
        answer = self.answers[key]
        return answer(kw) if callable(answer) else answer


@pytest.fixture()
def tpl(tmp_path):
    (tmp_path / "main.tf").write_text('variable "x" {\n  default = "y"\n}\n')
    return tmp_path


TEMPLATE = {"id": "t1", "name": "dev", "active_version_id": "v1", "display_name": "Dev"}
GET_T = ("GET", "/api/v2/organizations/default/templates/dev")
GET_V1 = ("GET", "/api/v2/templateversions/v1")


def active(chash, file_id=None):
    return {
        "id": "v1",
        "name": "v1",
        "message": ct.MESSAGE_MARK + chash,
        "job": {"status": "succeeded", "file_id": file_id},
    }


def test_unchanged_template_plans_nothing_with_two_reads(tpl):
    chash = ct.content_hash(ct.build_tar(tpl)[0], {})
    client = FakeClient({GET_T: TEMPLATE, GET_V1: active(chash)})
    plan = ct.TemplateSync(client).plan("dev", tpl, settings={"display_name": "Dev"})
    assert plan.changed is False and plan.result["changed"] is False
    assert client.log == [GET_T, GET_V1]


def test_settings_change_is_planned_then_patched_with_the_full_body(tpl):
    chash = ct.content_hash(ct.build_tar(tpl)[0], {})
    patched = {}
    client = FakeClient(
        {
            GET_T: TEMPLATE,
            GET_V1: active(chash),
            ("PATCH", "/api/v2/templates/t1"): lambda kw: patched.update(kw["json"]) or dict(TEMPLATE, **kw["json"]),
        }
    )
    sync = ct.TemplateSync(client)
    plan = sync.plan("dev", tpl, settings={"display_name": "New"}, want_diff=True)
    assert plan.changed and plan.content_changed is False and plan.changes == {"display_name": ("Dev", "New")}
    assert plan.result["diff"]["after"]["settings"] == {"display_name": "New"}
    assert client.log == [GET_T, GET_V1], "planning writes nothing"
    result = sync.apply(plan)
    assert client.log[-1] == ("PATCH", "/api/v2/templates/t1")
    assert patched["display_name"] == "New" and patched["name"] == "dev"
    assert result["template"]["display_name"] == "New" and result["uploaded"] is False


def test_new_template_plans_all_files_and_check_mode_stops_there(tpl):
    client = FakeClient({GET_T: None})
    result = ct.TemplateSync(client).sync("dev", tpl, check_mode=True, variables={"x": "z"})
    assert result["changed"] is True and result["files_changed"]["added"] == ["main.tf"]
    assert result["variables_changed"] == ["x"]
    assert client.log == [GET_T]


def test_settings_body_keeps_the_fields_coder_would_reset():
    body = ct.settings_body(dict(TEMPLATE, deprecation_message=None, icon="/i.png"), {"icon": ("/i.png", "/j.png")})
    assert body == {"name": "dev", "display_name": "Dev", "icon": "/j.png", "deprecation_message": ""}


def running(worker="d1"):
    return {"id": "v2", "name": "v2", "job": {"status": "running", "worker_id": worker}}


DAEMONS = ("GET", "/api/v2/organizations/default/provisionerdaemons")
CANCEL = ("PATCH", "/api/v2/templateversions/v2/cancel")
# the killed pod's daemon: Coder still calls it busy (the orphaned job is its current one), its reports stopped
OLD = {"id": "d1", "name": "coder-abc-1", "status": "busy", "last_seen_at": "2026-12-07T20:00:00.123456789Z"}


class DatedClient(FakeClient):
    """Answers carry Coder's clock (the Date header the transport keeps as last_date)."""

    def __init__(self, answers, date):
        super().__init__(answers)
        self.last_date = date


def test_an_import_whose_provisioner_stopped_reporting_is_canceled_and_named():
    """Coder restarted under a running import job: the old pod's provisioner stopped reporting more than 90 s ago by
    Coder's clock; the wait cancels the job and says so (Coder itself fails it only after 5 minutes), and the next run
    imports anew."""
    clock = Clock()
    answers = {("GET", "/api/v2/templateversions/v2"): running(), DAEMONS: [OLD], CANCEL: None}
    client = DatedClient(answers, "Mon, 07 Dec 2026 20:01:31 GMT")
    sync = ct.TemplateSync(client, sleep=clock.sleep, clock=clock)
    with pytest.raises(ct.TemplateError, match="ran on provisioner coder-abc-1, which stopped reporting"):
        sync.wait_import(running(), timeout=900)
    assert CANCEL in client.log
    assert clock.now < 60  # found at the first look (ORPHAN_CHECK_EVERY), not after Coder's 5 minutes


@pytest.mark.parametrize(
    ("daemon", "date"),
    [
        (OLD, "Mon, 07 Dec 2026 20:01:29 GMT"),  # within the stale interval: still reporting
        (dict(OLD, last_seen_at="not a time"), "Mon, 07 Dec 2026 20:01:31 GMT"),  # unreadable: never a reason
        (OLD, ""),  # no Date header: never a reason
    ],
    ids=["reporting", "unreadable-time", "no-date"],
)
def test_an_import_on_a_reporting_provisioner_is_waited_for(daemon, date):
    clock = Clock()
    answers = iter([running(), running(), {"id": "v2", "name": "v2", "job": {"status": "succeeded"}}])
    client = DatedClient({("GET", "/api/v2/templateversions/v2"): lambda kw: next(answers), DAEMONS: [daemon]}, date)
    sync = ct.TemplateSync(client, sleep=clock.sleep, clock=clock)
    done = sync.wait_import(running(), timeout=900, first_delay=10.0, max_delay=10.0)
    assert done["job"]["status"] == "succeeded"
    assert DAEMONS in client.log and CANCEL not in client.log
