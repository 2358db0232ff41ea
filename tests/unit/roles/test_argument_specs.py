"""Every role's defaults/main.yml and meta/argument_specs.yml agree: each default is declared, and a literal default
is the same in both (the spec is what `ansible-doc`, the preflight and the role's own validation read)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

ROLES = sorted(
    p.parent.parent for p in (Path(__file__).resolve().parents[3] / "roles").glob("*/meta/argument_specs.yml")
)


def _load(role: Path):
    spec = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text())["argument_specs"]["main"]["options"]
    defaults = yaml.safe_load((role / "defaults" / "main.yml").read_text()) or {}
    return spec, defaults


def _problems(role: Path) -> list[str]:
    spec, defaults = _load(role)
    problems = []
    for name, value in defaults.items():
        if name not in spec:
            problems.append(f"{name}: in defaults/main.yml, not in meta/argument_specs.yml")
            continue
        if "{{" in json.dumps(value):
            continue  # computed from other variables: the spec documents it without a literal default
        if "default" not in spec[name]:
            problems.append(f"{name}: default {value!r} in defaults/main.yml but none in the spec")
        elif spec[name]["default"] != value:
            problems.append(f"{name}: default {value!r} in defaults/main.yml but {spec[name]['default']!r} in the spec")
    return problems


@pytest.mark.parametrize("role", ROLES, ids=[r.name for r in ROLES])
def test_defaults_match_the_argument_spec(role):
    assert _problems(role) == []


def test_a_wrong_spec_default_is_found(tmp_path):
    """The comparison above can fail: a spec whose default differs from defaults/main.yml is reported."""
    role = tmp_path / "r"
    (role / "meta").mkdir(parents=True)
    (role / "defaults").mkdir()
    (role / "meta" / "argument_specs.yml").write_text(
        yaml.safe_dump({"argument_specs": {"main": {"options": {"r_x": {"type": "str", "default": "1.0.0"}}}}})
    )
    (role / "defaults" / "main.yml").write_text("r_x: 2.0.0\nr_y: 1\n")
    assert _problems(role) == [
        "r_x: default '2.0.0' in defaults/main.yml but '1.0.0' in the spec",
        "r_y: in defaults/main.yml, not in meta/argument_specs.yml",
    ]
