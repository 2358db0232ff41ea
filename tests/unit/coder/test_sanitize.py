"""sanitize / secret_free: failure messages and results of the Coder modules carry no secret."""

from __future__ import annotations

import contextlib
import io
import json

import pytest
from ansible import release as ansible_release
from ansible.module_utils import basic
from ansible_collections.coderstack.platform.plugins.module_utils.coder_client import CoderError
from ansible_collections.coderstack.platform.plugins.module_utils.coder_module import (
    coder_argument_spec,
    fail,
    run_main,
    sanitize,
    secret_free,
    secrets_of,
)

KEY = "AbCdEf1234-" + "x9" * 11  # shaped like a Coder token: <10 char id>-<22 char secret>


@pytest.mark.parametrize(
    ("text", "secret", "kept"),
    [
        ("cannot reach https://admin:hunter2@coder.example.com/api: refused", "hunter2", "coder.example.com/api"),
        ("GET http://user:p%40ss@10.0.0.1:3000/x failed", "p%40ss", "10.0.0.1:3000/x"),
        ("see https://coder.example.com/login?session_token=abc123&x=1", "abc123", "x=1"),
        (f"the token {KEY} was rejected", KEY, "AbCdEf1234-"),  # the id is public, the secret half is not
    ],
)
def test_credentials_in_text_are_masked(text, secret, kept):
    out = sanitize(text)
    assert secret not in out and "********" in out and kept in out


def test_secret_values_are_masked_in_every_form():
    pw = 'S3cret "quoted" & spaced/pw'
    text = f"raw {pw}; json {json.dumps(pw)}; url https://x/?p={__import__('urllib.parse').parse.quote(pw, safe='')}"
    out = sanitize(text, {pw, None, ""})
    assert "S3cret" not in out and out.count("********") == 3


CORE = tuple(int(x) for x in ansible_release.__version__.split(".")[:2])


def run_in_process(args, body, spec=None):
    """Build a secret_free AnsibleModule from ARGS in this process, run BODY(module); the JSON it printed."""
    basic._ANSIBLE_ARGS = json.dumps({"ANSIBLE_MODULE_ARGS": args}).encode()
    basic._ANSIBLE_PROFILE = "legacy"
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        spec = spec or {"password": {"type": "str", "no_log": True}}
        module = secret_free(basic.AnsibleModule(argument_spec=coder_argument_spec(**spec), supports_check_mode=True))
        body(module)
    return json.loads(out.getvalue())


ARGS = {
    "coder_url": "http://someone:Url-Pass-4711@127.0.0.1:9",
    "coder_token": "Token-Secret-0815",
    "password": "Password-Secret-42",
}
SECRETS = ("Url-Pass-4711", "Token-Secret-0815", "Password-Secret-42", KEY)


def leaks(result):
    text = json.dumps(result)
    return [s for s in SECRETS if s in text]


def test_fail_json_masks_message_result_traceback_and_arguments():
    def body(module):
        module.add_secret(KEY)
        try:
            raise CoderError("GET", "/api/v2/users/me", None, f"cannot reach {ARGS['coder_url']}: refused")
        except CoderError as e:
            fail(
                module,
                f"reading users with {ARGS['coder_token']} / {ARGS['password']} / {KEY}",
                e,
                users=[{"password": ARGS["password"]}],
            )

    # ansible-core 2.21 returns the invocation only when asked (its INJECT_INVOCATION setting); 2.19 always does, and
    # refuses the option that asks
    ask = {"_ansible_inject_invocation": True} if CORE >= (2, 21) else {}
    res = run_in_process({**ARGS, **ask}, body)
    assert res["failed"] is True and res["msg"].startswith("reading users with ******** / ******** / ")
    assert "GET /api/v2/users/me failed: cannot reach http://********@127.0.0.1:9" in res["msg"]
    assert res["invocation"]["module_args"]["coder_url"] == "http://********@127.0.0.1:9"
    assert leaks(res) == []


def test_unexpected_exception_fails_sanitized():
    def body(module):
        def main():
            raise KeyError(f"{ARGS['coder_url']} {KEY}")

        run_main(main)

    res = run_in_process(ARGS, body)
    assert res["failed"] is True and "unexpected error (KeyError)" in res["msg"] and leaks(res) == []


def test_warnings_are_sanitized(monkeypatch):
    shown = []  # where the warning goes depends on the process (controller or module): catch it on its way
    monkeypatch.setattr(basic, "warn", lambda warning, **kw: shown.append(warning))

    def body(module):
        module.warn(f"could not delete {KEY} at {ARGS['coder_url']}")
        module.exit_json(changed=False)

    res = run_in_process(ARGS, body)
    assert leaks(res) == [] and leaks(shown) == []
    assert shown == ["could not delete AbCdEf1234-******** at http://********@127.0.0.1:9"]


def test_secrets_of_includes_url_credentials():
    class M:
        no_log_values = {"a"}
        _coder_secrets = {"b"}
        params = {"coder_url": "https://u:p%40ss@h"}

    assert secrets_of(M()) == {"a", "b", "p@ss"}
