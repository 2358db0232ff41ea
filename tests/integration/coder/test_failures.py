"""Every Coder module, forced to fail against a throwaway REAL Coder server (wrong password, wrong token, input the
server refuses, credentials in coder_url): the message is there, names what failed, and shows no secret."""

from __future__ import annotations

import json
import uuid

import pytest
from coder_it import ADMIN

URL_PASSWORD = "Url-Pass-" + uuid.uuid4().hex[:10]
WRONG_PASSWORD = "Wrong-Pass-" + uuid.uuid4().hex[:10]
USER_PASSWORD = "User-Pass-" + uuid.uuid4().hex[:10]
# shaped like a Coder token (<10 char id>-<22 char secret>), but unknown to the server
WRONG_TOKEN = "ZZwrongtok-" + uuid.uuid4().hex[:22]


def with_credentials(url):
    return url.replace("http://", f"http://admin:{URL_PASSWORD}@")


def assert_clean_failure(res, *phrases, secrets=()):
    assert res.get("failed") is True, res
    msg = res.get("msg") or ""
    everything = json.dumps(res)
    for secret in (URL_PASSWORD, WRONG_PASSWORD, USER_PASSWORD, WRONG_TOKEN, ADMIN["password"], *secrets):
        assert secret not in everything, f"a secret is in the result: {msg}"
        assert secret.split("-", 1)[-1] not in everything, f"part of a secret is in the result: {msg}"
    assert msg.strip(), "empty failure message"
    for phrase in phrases:
        assert phrase in msg, f"{phrase!r} not in {msg!r}"


@pytest.fixture()
def tf_dir(tmp_path):
    (tmp_path / "main.tf").write_text('terraform {}\nvariable "x" {\n  default = "y"\n}\n')
    return tmp_path


def test_coder_first_user_failures(coder_server, module):
    base = {k: ADMIN[k] for k in ("username", "email", "name")}
    res = module(
        "coderstack.platform.coder_first_user", dict(base, coder_url=coder_server.url, password=WRONG_PASSWORD)
    )
    assert_clean_failure(res, "logging in as admin@it.example.com", "HTTP 401")
    wrong_url = with_credentials(coder_server.url)
    res = module("coderstack.platform.coder_first_user", dict(base, coder_url=wrong_url, password=ADMIN["password"]))
    assert_clean_failure(res, "cannot use coder_url http://********@127.0.0.1", "must not contain a user or password")


def test_coder_token_failures(coder_server, testbed, namespace, module):
    base = {
        "coder_url": coder_server.url,
        "username": "admin",
        "token_name": "it-failures",
        "token_secret": "coder-admin-token",
        "token_namespace": namespace,
        "kubeconfig": str(testbed.kubeconfig),
    }
    res = module(
        "coderstack.platform.coder_token", dict(base, login_email=ADMIN["email"], login_password=WRONG_PASSWORD)
    )
    assert_clean_failure(res, "logging in as admin@it.example.com to create a token", "HTTP 401")
    res = module("coderstack.platform.coder_token", dict(base, coder_token=WRONG_TOKEN))
    assert_clean_failure(res, "creating token it-failures for user admin", "HTTP 401", "coder_token")
    res = module("coderstack.platform.coder_token", dict(base, coder_token=coder_server.admin_token, lifetime_days=-1))
    assert_clean_failure(res, "lifetime_days must be 0", secrets=[coder_server.admin_token])
    res = module(
        "coderstack.platform.coder_token",
        dict(base, coder_url=with_credentials(coder_server.url), login_email=ADMIN["email"], login_password="x" * 12),
    )
    assert_clean_failure(res, "cannot use coder_url", secrets=["x" * 12])


def test_coder_user_failures(coder_server, module):
    token = coder_server.admin_token
    name = "fail" + uuid.uuid4().hex[:6]
    want = {"coder_url": coder_server.url, "username": name, "email": f"{name}@it.example.com"}
    res = module("coderstack.platform.coder_user", dict(want, coder_token=WRONG_TOKEN, password=USER_PASSWORD))
    assert_clean_failure(res, f"reconciling Coder user {name}", "HTTP 401")
    res = module(
        "coderstack.platform.coder_user", dict(want, coder_token=token, email="not-an-email", password=USER_PASSWORD)
    )
    assert_clean_failure(res, f"reconciling Coder user {name}", "HTTP 400", "email", secrets=[token])
    res = module(
        "coderstack.platform.coder_user", dict(want, coder_token=token, password="password")
    )  # too weak for Coder
    assert_clean_failure(res, f"reconciling Coder user {name}", "HTTP 400", secrets=[token])
    res = module(
        "coderstack.platform.coder_user", dict(want, coder_url=with_credentials(coder_server.url), coder_token=token)
    )
    assert_clean_failure(res, "cannot use coder_url", secrets=[token])


def test_coder_users_failures(coder_server, module):
    token = coder_server.admin_token
    name = "bulkfail" + uuid.uuid4().hex[:6]
    users = [{"username": name, "email": f"{name}@it.example.com"}]
    base = {"coder_url": coder_server.url, "users": users, "passwords": {name: USER_PASSWORD}}
    res = module("coderstack.platform.coder_users", dict(base, coder_token=WRONG_TOKEN))
    assert_clean_failure(res, "listing Coder users", "HTTP 401")
    bad = [{"username": name, "email": "not-an-email"}]
    res = module("coderstack.platform.coder_users", dict(base, coder_token=token, users=bad))
    assert_clean_failure(res, f"reconciling Coder user {name}", "HTTP 400", secrets=[token])
    res = module(
        "coderstack.platform.coder_users", dict(base, coder_url=with_credentials(coder_server.url), coder_token=token)
    )
    assert_clean_failure(res, "cannot use coder_url", secrets=[token])


def test_coder_template_failures(coder_server, tf_dir, module):
    token = coder_server.admin_token
    base = {"coder_url": coder_server.url, "name": "it-failing", "directory": str(tf_dir)}
    res = module("coderstack.platform.coder_template", dict(base, coder_token=WRONG_TOKEN))
    assert_clean_failure(res, "syncing template it-failing", "HTTP 401")
    res = module("coderstack.platform.coder_template", dict(base, coder_token=WRONG_TOKEN, state="absent"))
    assert_clean_failure(res, "deleting template it-failing", "HTTP 401")
    res = module("coderstack.platform.coder_template", dict(base, coder_token=token, organization="no-such-org"))
    assert_clean_failure(res, "syncing template it-failing", "no-such-org", secrets=[token])
    res = module(
        "coderstack.platform.coder_template",
        dict(base, coder_url=with_credentials(coder_server.url), coder_token=token),
    )
    assert_clean_failure(res, "cannot use coder_url", secrets=[token])


def test_coder_info_failures(coder_server, module):
    res = module("coderstack.platform.coder_info", {"coder_url": coder_server.url, "coder_token": WRONG_TOKEN})
    assert_clean_failure(res, f"listing users of {coder_server.url}", "HTTP 401")
    res = module(
        "coderstack.platform.coder_info", {"coder_url": with_credentials(coder_server.url), "coder_token": WRONG_TOKEN}
    )
    assert_clean_failure(res, "cannot use coder_url")
