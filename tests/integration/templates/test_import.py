"""coder_template against a REAL Coder server whose provisioners run terraform with the offline provider mirror."""

from __future__ import annotations

import shutil
import time

import pytest
from tpl_helpers import TEMPLATES, run_module

DIND_VARS = {
    "namespace": "coder",
    "default_image": "127.0.0.1:15000/coderstack/workspace:it",
    "docker_mode": "privileged",
}
OLLAMA_VARS = {"namespace": "coder"}


def versions(client, template_id):
    return client.template_versions(template_id)


def template(client, name):
    return client.get_template("default", name)


def params_by_name(client, version_id):
    params = client.request("GET", f"/api/v2/templateversions/{version_id}/rich-parameters") or []
    return {p["name"]: p for p in params}


@pytest.fixture(scope="module")
def imported(coder):
    """Both shipped templates pushed once (the first import of each), with the time it took."""
    out = {}
    for name, variables in (("kubernetes-dind", DIND_VARS), ("kubernetes-ollama", OLLAMA_VARS)):
        t0 = time.monotonic()
        res = run_module(
            {
                "coder_url": coder.url,
                "coder_token": coder.token,
                "name": name,
                "directory": str(TEMPLATES / name),
                "variables": variables,
                "display_name": name.replace("-", " ").title(),
                "icon": "/icon/k8s.png",
                "default_ttl": 3600,
            }
        )
        res["wall_seconds"] = round(time.monotonic() - t0, 1)
        out[name] = res
    return out


def test_both_templates_import_with_succeeded_jobs(coder, imported):
    client = coder.client()
    for name, res in imported.items():
        assert res.get("failed") is not True, res.get("msg")
        assert res["changed"] is True and res["uploaded"] is True and res["created"] is True
        print(f"{name}: import job {res['import_seconds']}s, module run {res['wall_seconds']}s")
        tpl = template(client, name)
        assert tpl["active_version_id"] == res["version"]["id"]
        assert tpl["display_name"] == name.replace("-", " ").title()
        assert tpl["icon"] == "/icon/k8s.png"
        assert tpl["default_ttl_ms"] == 3600 * 1000
        version = client.get_template_version(tpl["active_version_id"])
        assert version["job"]["status"] == "succeeded", version["job"]
        assert res["content_hash"] in version["message"]


def test_dind_parameters_and_variables(coder, imported):
    client = coder.client()
    vid = imported["kubernetes-dind"]["version"]["id"]
    params = params_by_name(client, vid)
    assert sorted(params) == ["cpu", "image", "memory"]
    assert params["cpu"]["default_value"] == "2"
    assert [o["value"] for o in params["cpu"]["options"]] == ["2", "4", "8"]
    assert [o["value"] for o in params["memory"]["options"]] == ["2", "4", "8"]
    assert params["cpu"]["mutable"] is True
    # the image parameter's default is the template variable the inventory sets from coderstack_workspace_image
    assert params["image"]["default_value"] == DIND_VARS["default_image"]
    assert params["image"]["type"] == "string"
    variables = {v["name"]: v for v in client.template_version_variables(vid)}
    assert variables["docker_mode"]["value"] == "privileged"
    assert variables["ephemeral_storage"]["default_value"] == "10"
    assert variables["namespace"]["value"] == "coder"
    assert variables["home_disk_size"]["default_value"] == "4"
    assert variables["docker_disk_size"]["default_value"] == "10"
    assert variables["linuxbrew_disk_size"]["default_value"] == "10"


def test_ollama_parameters_and_variables(coder, imported):
    client = coder.client()
    vid = imported["kubernetes-ollama"]["version"]["id"]
    params = params_by_name(client, vid)
    assert sorted(params) == ["cpu", "home_disk_size", "memory", "ollama_model"]
    assert [o["value"] for o in params["cpu"]["options"]] == ["2", "4", "6", "8"]
    assert params["home_disk_size"]["type"] == "number"
    assert params["home_disk_size"]["mutable"] is False
    assert params["home_disk_size"]["validation_min"] == 1
    assert params["ollama_model"]["default_value"] == "llama3"
    variables = {v["name"]: v for v in client.template_version_variables(vid)}
    assert variables["namespace"]["required"] is True and variables["namespace"]["value"] == "coder"
    assert variables["use_kubeconfig"]["default_value"] == "false"


def test_second_run_is_unchanged_with_no_upload(coder, imported, push):
    client = coder.client()
    for name, variables in (("kubernetes-dind", DIND_VARS), ("kubernetes-ollama", OLLAMA_VARS)):
        tpl = template(client, name)
        before = len(versions(client, tpl["id"]))
        res = push(
            name,
            TEMPLATES / name,
            variables=variables,
            display_name=name.replace("-", " ").title(),
            icon="/icon/k8s.png",
            default_ttl=3600,
        )
        assert res["changed"] is False, res
        assert res["uploaded"] is False
        print(f"{name}: unchanged run cost {res['api_calls']}")
        assert res["api_calls"] == {"GET": 2}  # the template by name + its active version; no POST at all
        assert len(versions(client, tpl["id"])) == before
        assert template(client, name)["active_version_id"] == tpl["active_version_id"]


def test_one_line_change_makes_one_version_and_promotes_it(coder, push, tmp_path):
    client = coder.client()
    d = tmp_path / "tpl"
    shutil.copytree(TEMPLATES / "kubernetes-ollama", d)
    first = push("ollama-edit", d, variables=OLLAMA_VARS)
    assert first["changed"] and first["version"]["job_status"] == "succeeded", first.get("msg")
    tpl = template(client, "ollama-edit")
    assert len(versions(client, tpl["id"])) == 1

    main = d / "main.tf"
    main.write_text(main.read_text().replace('default      = "llama3"', 'default      = "llama3.2:1b"', 1))
    # check mode first: says what would change, changes nothing
    dry = push("ollama-edit", d, check=True, variables=OLLAMA_VARS)
    assert dry["changed"] is True and dry["uploaded"] is False
    assert dry["files_changed"] == {"added": [], "removed": [], "modified": ["main.tf"]}
    assert "diff" in dry and dry["diff"]["before"]["files"]["main.tf"] != dry["diff"]["after"]["files"]["main.tf"]
    assert len(versions(client, tpl["id"])) == 1

    res = push("ollama-edit", d, variables=OLLAMA_VARS)
    assert res["changed"] is True and res["uploaded"] is True and res["promoted"] is True
    assert res["files_changed"]["modified"] == ["main.tf"] and res["variables_changed"] == []
    after = template(client, "ollama-edit")
    assert len(versions(client, tpl["id"])) == 2  # exactly one new version
    assert after["active_version_id"] == res["version"]["id"] != tpl["active_version_id"]
    assert params_by_name(client, after["active_version_id"])["ollama_model"]["default_value"] == "llama3.2:1b"

    # a variable change alone is a change too (and is named)
    res2 = push("ollama-edit", d, variables={"namespace": "other"})
    assert (
        res2["changed"] is True
        and res2["variables_changed"] == ["namespace"]
        and res2["files_changed"]["modified"] == []
    )
    assert len(versions(client, tpl["id"])) == 3


def test_broken_template_fails_with_provisioner_error_and_keeps_active_version(coder, push, tmp_path):
    client = coder.client()
    d = tmp_path / "tpl"
    shutil.copytree(TEMPLATES / "kubernetes-ollama", d)
    good = push("ollama-broken", d, variables=OLLAMA_VARS)
    assert good["changed"] is True
    active = template(client, "ollama-broken")["active_version_id"]

    main = d / "main.tf"
    main.write_text(
        main.read_text() + '\nresource "coder_metadata" "oops" {\n  resource_id = var.no_such_variable\n}\n'
    )
    bad = push("ollama-broken", d, variables=OLLAMA_VARS)
    assert bad.get("failed") is True
    print(bad["msg"][:1500])
    assert "importing template ollama-broken failed" in bad["msg"]
    # the provisioner's own words reach the task's message
    assert "no_such_variable" in bad["msg"] and "undeclared input variable" in bad["msg"], bad["msg"]
    assert "left the active version untouched" in bad["msg"]
    assert template(client, "ollama-broken")["active_version_id"] == active


def test_missing_required_variable_is_named(coder, push):
    bad = push("ollama-novars", TEMPLATES / "kubernetes-ollama", variables={})
    assert bad.get("failed") is True
    assert "namespace" in bad["msg"], bad["msg"]


def test_state_absent_removes_the_template(coder, push, tmp_path):
    client = coder.client()
    res = push("ollama-gone", TEMPLATES / "kubernetes-ollama", variables=OLLAMA_VARS)
    assert res["changed"] is True
    gone = push("ollama-gone", None, state="absent")
    assert gone["changed"] is True
    assert client.get_template("default", "ollama-gone") is None
    again = push("ollama-gone", None, state="absent")
    assert again["changed"] is False


def test_activate_false_imports_once_without_promoting(coder, push, tmp_path):
    client = coder.client()
    d = tmp_path / "tpl"
    shutil.copytree(TEMPLATES / "kubernetes-ollama", d)
    push("ollama-staged", d, variables=OLLAMA_VARS)
    active = template(client, "ollama-staged")["active_version_id"]
    main = d / "main.tf"
    main.write_text(main.read_text().replace('default      = "llama3"', 'default      = "mistral"', 1))
    staged = push("ollama-staged", d, variables=OLLAMA_VARS, activate=False)
    assert staged["changed"] is True and staged["uploaded"] is True and staged["promoted"] is False
    again = push("ollama-staged", d, variables=OLLAMA_VARS, activate=False)
    assert again["changed"] is False and again["uploaded"] is False
    tpl = template(client, "ollama-staged")
    assert tpl["active_version_id"] == active
    assert len(versions(client, tpl["id"])) == 2
