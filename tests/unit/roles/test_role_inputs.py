"""The action coderstack.platform.role_inputs (plugins/action/role_inputs.py), run by ansible-playbook on the
controller against roles made for the test: it refuses what the roles' specs and validate steps refuse, reports every
refusal at once, evaluates `vars`, `when` and `loop` as the role's own tasks would, and leaves a validate step with
other tasks than asserts to the caller. No cluster is needed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]

ALPHA_SPEC = {
    "argument_specs": {
        "main": {
            "short_description": "alpha",
            "options": {
                "alpha_size": {"type": "str", "default": "10Gi"},
                "alpha_flag": {"type": "bool", "default": False},
                "alpha_count": {"type": "int", "default": 1},
                "alpha_items": {"type": "list", "elements": "str", "default": ["a"]},
            },
        }
    }
}
ALPHA_VALIDATE = [
    {
        "name": "The size is a quantity",
        "ansible.builtin.assert": {
            "that": "alpha_size is match('^[0-9]+(Ki|Mi|Gi)?$')",
            "fail_msg": "alpha_size '{{ alpha_size }}' is not a quantity",
            "quiet": True,
        },
    },
    {
        "name": "The count is in range (task vars refer to other variables)",
        "vars": {"alpha_limit": "{{ alpha_count_max }}"},
        "ansible.builtin.assert": {
            "that": ["alpha_count > 0", "alpha_count <= alpha_limit | int"],
            "fail_msg": "alpha_count={{ alpha_count }} must be 1..{{ alpha_limit }}",
        },
    },
    {
        "name": "Only checked when flagged",
        "when": "alpha_flag",
        "ansible.builtin.assert": {"that": "alpha_size != '13Gi'", "fail_msg": "13Gi is unlucky"},
    },
    {
        "name": "Each item is lowercase",
        "loop": "{{ alpha_items }}",
        "loop_control": {"loop_var": "alpha_item"},
        "ansible.builtin.assert": {"that": "alpha_item is lower", "fail_msg": "item {{ alpha_item }} is not lowercase"},
    },
]


def _write(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


@pytest.fixture(scope="module")
def roles_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("roles")
    _write(d / "alpha/meta/argument_specs.yml", ALPHA_SPEC)
    _write(
        d / "alpha/defaults/main.yml",
        {"alpha_size": "10Gi", "alpha_flag": False, "alpha_count": 1, "alpha_items": ["a"]},
    )
    _write(d / "alpha/meta/main.yml", {"dependencies": [{"role": "ns.coll.shared"}]})
    _write(d / "alpha/tasks/validate.yml", ALPHA_VALIDATE)
    # a dependency's defaults are seen by the role's validate step, as in a real run
    _write(
        d / "shared/meta/argument_specs.yml",
        {"argument_specs": {"main": {"options": {"alpha_count_max": {"type": "int"}}}}},
    )
    _write(d / "shared/defaults/main.yml", {"alpha_count_max": 5})
    # a validate step with a module task: left to the caller
    _write(
        d / "beta/meta/argument_specs.yml", {"argument_specs": {"main": {"options": {"beta_path": {"type": "str"}}}}}
    )
    _write(d / "beta/tasks/validate.yml", [{"name": "x", "ansible.builtin.stat": {"path": "/"}}])
    return d


def run(roles_dir: Path, tmp_path: Path, extra: dict, **args) -> dict:
    play = [
        {
            "hosts": "localhost",
            "gather_facts": False,
            "tasks": [
                {
                    "name": "inputs",
                    "coderstack.platform.role_inputs": {"roles_dir": str(roles_dir), **args},
                    "register": "out",
                    "ignore_errors": True,
                },
                {
                    "name": "out",
                    "ansible.builtin.copy": {"content": "{{ out | to_json }}", "dest": str(tmp_path / "out.json")},
                },
            ],
        }
    ]
    _write(tmp_path / "play.yml", play)
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"))
    for name in ("ANSIBLE_STRATEGY", "ANSIBLE_STRATEGY_PLUGINS"):  # plain linear: the action runs in the controller
        env.pop(name, None)
    cmd = ["ansible-playbook", str(tmp_path / "play.yml"), "-i", "localhost,", "-c", "local", "-e", json.dumps(extra)]
    cmd += ["-e", json.dumps({"ansible_python_interpreter": sys.executable})]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    return json.loads((tmp_path / "out.json").read_text())


def test_good_values_pass_and_a_module_step_is_left_to_the_caller(roles_dir, tmp_path):
    out = run(roles_dir, tmp_path, {"alpha_size": "5Gi", "alpha_items": ["x", "y"]})
    assert not out.get("failed"), out
    assert out["roles_validated"] == ["alpha"]
    assert out["include_roles"] == ["beta"]
    assert out["roles_checked"] == ["alpha", "beta", "shared"]


def test_every_refusal_is_reported_at_once(roles_dir, tmp_path):
    extra = {"alpha_size": "ten", "alpha_count": 9, "alpha_items": ["ok", "NotOk"], "alpha_sise": "1Gi"}
    out = run(roles_dir, tmp_path, extra)
    assert out["failed"]
    assert out["problems"] == [
        "unknown variable(s) alpha_sise: no role declares them in roles/<role>/meta/argument_specs.yml; check the"
        " spelling in the inventory or -e",
        "role alpha: The size is a quantity: alpha_size 'ten' is not a quantity",
        "role alpha: The count is in range (task vars refer to other variables): alpha_count=9 must be 1..5",
        "role alpha: Each item is lowercase: item NotOk is not lowercase",
    ]


def test_when_decides_whether_an_assert_is_evaluated(roles_dir, tmp_path):
    assert not run(roles_dir, tmp_path, {"alpha_size": "13Gi"}).get("failed")
    out = run(roles_dir, tmp_path, {"alpha_size": "13Gi", "alpha_flag": True})
    assert out["problems"] == ["role alpha: Only checked when flagged: 13Gi is unlucky"]


def test_types_are_checked_first_and_string_booleans_refused(roles_dir, tmp_path):
    out = run(roles_dir, tmp_path, {"alpha_count": "many", "alpha_flag": "no"})
    assert out["failed"]
    assert out["problems"][0].startswith("alpha_flag is a string, not true/false")
    assert any(p.startswith("role alpha (meta/argument_specs.yml):") and "alpha_count" in p for p in out["problems"])
    # the validate step is not evaluated on values of the wrong type (its rules assume the types)
    assert not any(p.startswith("role alpha: ") for p in out["problems"]), out["problems"]


def test_an_unknown_role_to_check_is_refused(roles_dir, tmp_path):
    out = run(roles_dir, tmp_path, {}, roles=["alpha", "gamma"])
    assert out["failed"]
    assert "names roles without meta/argument_specs.yml: gamma" in out["msg"]


def test_the_shipped_validate_steps_are_evaluated_in_one_task():
    """Every shipped role's validate step is asserts only: the preflight evaluates them all in one task."""
    from importlib import util

    spec = util.spec_from_file_location("role_inputs", REPO / "plugins/action/role_inputs.py")
    mod = util.module_from_spec(spec)
    spec.loader.exec_module(mod)

    class Loader:
        @staticmethod
        def load_from_file(path, **_):
            return yaml.safe_load(Path(path).read_text())

    roles_dir = REPO / "roles"
    with_validate = [p.parent.parent.name for p in roles_dir.glob("*/tasks/validate.yml")]
    slow = sorted(r for r in with_validate if not mod._Role(Loader, str(roles_dir), r).evaluable)
    assert slow == []
