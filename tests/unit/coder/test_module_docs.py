"""The Coder modules' DOCUMENTATION/EXAMPLES/RETURN parse and document every connection option."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml
from ansible.module_utils.coder_common import CODER_CONNECTION_SPEC, USER_OPTIONS

PLUGINS = Path(__file__).resolve().parents[3] / "plugins"
MODULES = PLUGINS / "modules"
NAMES = ["coder_first_user", "coder_token", "coder_user", "coder_users", "coder_info", "coder_template"]


def fragment(name):
    tree = ast.parse((PLUGINS / "doc_fragments" / f"{name}.py").read_text())
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef))
    node = next(n for n in cls.body if isinstance(n, ast.Assign) and n.targets[0].id == "DOCUMENTATION")
    return yaml.safe_load(ast.literal_eval(node.value))


def docs(name):
    tree = ast.parse((MODULES / f"{name}.py").read_text())
    out = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") in (
            "DOCUMENTATION",
            "EXAMPLES",
            "RETURN",
        ):
            out[node.targets[0].id] = yaml.safe_load(ast.literal_eval(node.value))
    return out


@pytest.mark.parametrize("name", NAMES)
def test_docs_parse_and_cover_connection_options(name):
    d = docs(name)
    assert set(d) == {"DOCUMENTATION", "EXAMPLES", "RETURN"}
    assert d["DOCUMENTATION"]["module"] == name
    opts = dict(d["DOCUMENTATION"]["options"])
    for frag in d["DOCUMENTATION"].get("extends_documentation_fragment", []):
        opts.update(fragment(frag)["options"])
    assert set(CODER_CONNECTION_SPEC) <= set(opts)
    for opt, spec in CODER_CONNECTION_SPEC.items():
        assert opts[opt].get("type", "str") == spec["type"], opt
    assert isinstance(d["EXAMPLES"], list) and d["EXAMPLES"]


def test_user_options_documented():
    user = docs("coder_user")["DOCUMENTATION"]["options"]
    bulk = docs("coder_users")["DOCUMENTATION"]["options"]["users"]["suboptions"]
    for opt in USER_OPTIONS:
        assert opt in user and opt in bulk, opt
