"""playbooks/coder_admin.yml + playbooks/users.yml on the testbed inventory, against an empty throwaway Coder and
a throwaway namespace: first admin + token Secret, users from a list, changed=0 on re-run, API calls counted."""

from __future__ import annotations

import base64
import json
import re

USERS = [
    {"username": "rolealice", "email": "rolealice@it.example.com", "name": "Alice", "roles": ["template-admin"]},
    {"username": "rolebob", "email": "rolebob@it.example.com", "login_type": "github", "suspended": True},
]


def secret(kube, ns, name):
    from kubernetes import client

    s = client.CoreV1Api(kube).read_namespaced_secret(name, ns)
    return s.metadata.resource_version, {k: base64.b64decode(v).decode() for k, v in s.data.items()}


def api_calls(output: str) -> dict:
    m = re.search(r"coder_api_calls:\s*\n((?:\s+\w+: \d+\n)+)", output)
    return {k: int(v) for k, v in re.findall(r"(\w+): (\d+)", m.group(1))} if m else {}


def test_admin_and_users_converge_then_idempotent(fresh_coder, kube, namespace, playbook):
    ev = {"coderstack_coder_url": fresh_coder.url, "coderstack_namespace": namespace, "coder_users": USERS}

    r = playbook("playbooks/coder_admin.yml", extra_vars=ev, args=["--check"])
    assert r.rc == 0 and r.failed == 0, r.output
    assert fresh_coder.client().has_first_user() is False, "check mode created the first user"
    from kubernetes import client

    assert client.CoreV1Api(kube).list_namespaced_secret(namespace).items == [], "check mode created a Secret"

    r = playbook("playbooks/coder_admin.yml", extra_vars=ev)
    assert r.rc == 0 and r.failed == 0, r.output
    rv_admin, admin = secret(kube, namespace, "coder-admin")
    rv_tok, tok = secret(kube, namespace, "coder-admin-token")
    assert admin["password"] not in r.output and tok["token"] not in r.output
    me = fresh_coder.client().check_token(tok["token"])
    assert me["username"] == "admin" and [x["name"] for x in me["roles"]] == ["owner"]

    r = playbook("playbooks/coder_admin.yml", extra_vars=ev)
    assert r.rc == 0 and r.changed == 0, r.output
    assert secret(kube, namespace, "coder-admin-token")[0] == rv_tok
    assert secret(kube, namespace, "coder-admin")[0] == rv_admin

    r = playbook("playbooks/users.yml", extra_vars=ev, args=["--diff"])
    assert r.rc == 0 and r.failed == 0, r.output
    c = fresh_coder.client(tok["token"])
    alice, bob = c.get_user("rolealice"), c.get_user("rolebob")
    assert [x["name"] for x in alice["roles"]] == ["template-admin"] and alice["login_type"] == "password"
    assert bob["status"] == "suspended" and bob["login_type"] == "github"
    _, pw = secret(kube, namespace, "coder-user-rolealice")
    assert pw["password"] not in r.output
    assert fresh_coder.client().login("rolealice@it.example.com", pw["password"])  # generated password works

    r = playbook("playbooks/users.yml", extra_vars=ev)
    assert r.rc == 0 and r.changed == 0, r.output
    assert api_calls(r.output) == {"GET": 1}, r.output

    ev["coder_users"] = [USERS[0], {"username": "rolebob", "state": "absent"}]
    r = playbook("playbooks/users.yml", extra_vars=ev, args=["--check"])
    assert r.rc == 0 and c.get_user("rolebob") is not None, "check mode deleted the user"
    r = playbook("playbooks/users.yml", extra_vars=ev)
    assert r.rc == 0 and c.get_user("rolebob") is None
    print(json.dumps({"api_calls_unchanged_run": {"GET": 1}}))
