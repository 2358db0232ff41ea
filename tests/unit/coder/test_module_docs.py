"""The Coder modules' DOCUMENTATION/EXAMPLES/RETURN parse and document every connection option."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml
from ansible_collections.coderstack.platform.plugins.module_utils.coder_module import CODER_CONNECTION_SPEC
from ansible_collections.coderstack.platform.plugins.module_utils.coder_users import USER_OPTIONS
from ansible_collections.coderstack.platform.plugins.modules import (
    coder_first_user,
    coder_info,
    coder_template,
    coder_token,
    coder_user,
    coder_users,
    coder_workspace,
)

PLUGINS = Path(__file__).resolve().parents[3] / "plugins"
COLLECTION = "coderstack.platform"
MODULES = PLUGINS / "modules"
NAMES = [
    "coder_first_user",
    "coder_token",
    "coder_user",
    "coder_users",
    "coder_info",
    "coder_template",
    "coder_workspace",
]

# the modules' code, imported from the collection (main() builds the argument_spec)
CODE = {
    m.__name__.rpartition(".")[2]: m
    for m in (coder_first_user, coder_info, coder_template, coder_token, coder_user, coder_users, coder_workspace)
}


def fragment(fqcn):
    """A doc fragment of this collection, named by FQCN as modules reference it."""
    namespace_name, _, name = fqcn.rpartition(".")
    assert namespace_name == COLLECTION, f"{fqcn}: doc fragments are referenced as {COLLECTION}.<name>"
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


class _Spec(Exception):
    """Raised instead of building the module: carries the argument_spec main() passed."""


class _Capture:
    def __init__(self, argument_spec=None, **kwargs):
        raise _Spec(argument_spec)


def argument_spec(name, monkeypatch):
    """The argument_spec a module's main() builds (the module class is replaced before anything runs)."""
    mod = CODE[name]
    monkeypatch.setattr(mod, "AnsibleModule", _Capture)
    with pytest.raises(_Spec) as ei:
        mod.main()
    return ei.value.args[0]


def _compare(where, spec, documented, problems):
    for opt in sorted(set(spec) | set(documented)):
        if opt not in documented:
            problems.append(f"{where}{opt}: in argument_spec, not documented")
            continue
        if opt not in spec:
            problems.append(f"{where}{opt}: documented, not in argument_spec")
            continue
        s, d = spec[opt], documented[opt]
        checks = {
            "type": (s.get("type", "str"), d.get("type", "str")),
            "required": (bool(s.get("required")), bool(d.get("required"))),
            "default": (s.get("default"), d.get("default")),
            "choices": (s.get("choices"), d.get("choices")),
            "elements": (s.get("elements"), d.get("elements")),
            "aliases": (sorted(s.get("aliases") or []), sorted(d.get("aliases") or [])),
        }
        for field, (code, doc) in checks.items():
            if code != doc:
                problems.append(f"{where}{opt}: {field} is {code!r} in argument_spec but {doc!r} in DOCUMENTATION")
        if s.get("options") or d.get("suboptions"):
            _compare(f"{where}{opt}.", s.get("options") or {}, d.get("suboptions") or {}, problems)


@pytest.mark.parametrize("name", NAMES)
def test_argument_spec_matches_documentation(name, monkeypatch):
    """Every option's type, required, default, choices, elements and aliases agree between code and docs
    (e.g. coder_token's lifetime_days: documented 0 = the server's maximum, so the code defaults to 0)."""
    d = docs(name)["DOCUMENTATION"]
    opts = dict(d["options"])
    for frag in d.get("extends_documentation_fragment", []):
        opts = {**fragment(frag)["options"], **opts}
    problems = []
    _compare("", argument_spec(name, monkeypatch), opts, problems)
    assert problems == []
