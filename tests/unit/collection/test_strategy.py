"""The strategy coderstack.platform.accelerated (ansible.cfg): Mitogen's linear strategy when mitogen is installed,
plain linear with CODERSTACK_MITOGEN=0."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

COLLECTIONS = str(Path(__file__).resolve().parents[3] / "collections")

MRO = (
    "from ansible_collections.coderstack.platform.plugins.strategy import accelerated;"
    "print(' '.join(c.__module__ for c in accelerated.StrategyModule.__mro__))"
)


def _mro(**env) -> str:
    e = dict(os.environ, PYTHONPATH=COLLECTIONS, **env)
    out = subprocess.run([sys.executable, "-c", MRO], env=e, capture_output=True, text=True, check=True)
    return out.stdout


def test_with_mitogen_the_strategy_is_mitogens_linear():
    pytest.importorskip("ansible_mitogen")
    mro = _mro(CODERSTACK_MITOGEN="1")
    assert "ansible_mitogen.strategy" in mro
    assert "ansible.plugins.strategy.linear" in mro


def test_switched_off_it_is_plain_linear():
    mro = _mro(CODERSTACK_MITOGEN="0")
    assert "ansible_mitogen" not in mro
    assert "ansible.plugins.strategy.linear" in mro


CACHED = r"""
import os
from ansible.utils.collection_loader._collection_finder import _AnsibleCollectionFinder

# as in a run: Ansible's collection loader over this repository's collections/ and the installed ones
_AnsibleCollectionFinder(paths=[os.environ["COLLECTIONS"]], scan_sys_paths=True)._install()
import ansible_mitogen.planner as planner
from ansible.collections.list import list_collection_dirs
from ansible_collections.coderstack.platform.plugins.strategy import accelerated

class Invocation:
    def __init__(self):
        self._extra_sys_paths = set()

expected = {d.decode() if isinstance(d, bytes) else d for d in list_collection_dirs()}
accelerated._collection_dirs_once()
first = planner._load_collections
accelerated._collection_dirs_once()  # a second play: the same cached function
assert planner._load_collections is first and first.coderstack_cached

import ansible.collections.list as acl
acl.list_collection_dirs = lambda: (_ for _ in ()).throw(AssertionError("listed again"))
inv = Invocation()
planner._load_collections(inv)
assert inv._extra_sys_paths == expected, (inv._extra_sys_paths, expected)
assert any(p.endswith("ansible_collections/kubernetes/core") for p in expected), expected
print("ok")
"""


def test_mitogen_planner_gets_the_collection_list_computed_once_in_the_strategy_process():
    """Mitogen's planner listed every installed collection before each collection module (~0.15 s a task, its cache
    living in the per-task worker): the strategy computes the list once, before the workers fork, and the planner's
    answer is the same paths without listing again."""
    pytest.importorskip("ansible_mitogen")
    e = dict(os.environ, COLLECTIONS=COLLECTIONS, CODERSTACK_MITOGEN="1")
    out = subprocess.run([sys.executable, "-c", CACHED], env=e, capture_output=True, text=True, check=False)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-3000:]


LEXER = r"""
from ansible._internal._templating._jinja_bits import AnsibleEnvironment
from ansible.plugins.loader import filter_loader
from ansible_collections.coderstack.platform.plugins.strategy import accelerated

before = (len(AnsibleEnvironment._lexer_cache), len(filter_loader._cached_non_collection_wrappers))
accelerated._templating_once()
after = (len(AnsibleEnvironment._lexer_cache), len(filter_loader._cached_non_collection_wrappers))
print(before[0], after[0], before[1], after[1] > 20)
"""


def test_the_jinja_lexer_and_filters_are_ready_before_the_workers_fork():
    """Workers are forked from the strategy's process: a lexer it cached, filters it loaded, they do not again."""
    e = dict(os.environ, PYTHONPATH=COLLECTIONS, CODERSTACK_MITOGEN="0")
    out = subprocess.run([sys.executable, "-c", LEXER], env=e, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["0", "1", "0", "True"], out.stdout + out.stderr


def _run_fixture(playbook: str, env: dict, *extra_vars: str, timeout: int = 120) -> str:
    """ansible-playbook on tests/fixtures/playbooks/<playbook> against localhost, with this repo's ansible.cfg (so
    the strategy) and `env` added to the environment; its stdout, the run having succeeded."""
    repo = Path(__file__).resolve().parents[3]
    e = dict(os.environ, ANSIBLE_CONFIG=str(repo / "ansible.cfg"), **env)
    cmd = ["ansible-playbook", str(repo / "tests" / "fixtures" / "playbooks" / playbook), "-i", "localhost,"]
    cmd += ["-c", "local", "-e", f"ansible_python_interpreter={sys.executable}"]
    for extra in extra_vars:
        cmd += ["-e", extra]
    out = subprocess.run(cmd, cwd=repo, env=e, capture_output=True, text=True, timeout=timeout, check=False)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    return out.stdout


def _in_process_run(on: bool) -> str:
    env = {"CODERSTACK_IN_PROCESS": "1" if on else "0", "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0"}
    return _run_fixture("in_process.yml", env)


def test_controller_only_tasks_run_in_the_strategy_process_with_the_same_outcome():
    """assert, debug, fail, set_fact, includes and a module task its `when` skips run in the strategy's process (one
    pid for both set_fact tasks)
    instead of a forked worker each (two pids: a loop's items share their task's worker), and the run's output is the
    same, failures and rescues included."""
    here, forked = _in_process_run(True), _in_process_run(False)
    assert "PIDS 1 of 4" in here
    assert "ok=13 " in here and "skipped=1 " in here and "unreachable=0" in here
    assert "PIDS 2 of 4" in forked
    assert here.replace("PIDS 1 of 4", "PIDS") == forked.replace("PIDS 2 of 4", "PIDS")


def _warm_up_run(on: bool) -> dict:
    import json

    pytest.importorskip("ansible_mitogen")
    env = {"CODERSTACK_MITOGEN": "1", "CODERSTACK_WARM_UP": "1" if on else "0"}
    env["ANSIBLE_STDOUT_CALLBACK"] = "ansible.posix.json"
    out = _run_fixture("warm_up.yml", env, json.dumps({"warm_up": on}), timeout=180)
    tasks = json.loads(out)["plays"][0]["tasks"]
    first, later = (t["hosts"]["localhost"] for t in tasks)
    return {
        "first": first["imported"],
        "later": later["imported"],
        "origin": later["ansible_origin"],
        "loader": later["ansible_loader"],
    }


def test_the_warm_up_imports_the_modules_imports_in_the_target_interpreter_ahead():
    """At the first play, a worker starts the target's Mitogen interpreter and imports the kubernetes client and the
    module_utils there; switched off (CODERSTACK_WARM_UP=0), the first module finds none of it, and nothing imports
    it. Either way the target imports `ansible` from the controller's own files, not as source sent by Mitogen."""
    import ansible

    warmed, cold = _warm_up_run(True), _warm_up_run(False)
    assert all(warmed["later"].values()), warmed
    assert cold["first"] == {"kubernetes.dynamic": False} and not any(cold["later"].values()), cold
    for state in (warmed, cold):
        assert state["origin"] == ansible.__spec__.origin and state["loader"] == "SourceFileLoader", state


CODE_CACHE = r"""
from ansible._internal._templating._jinja_bits import AnsibleEnvironment
from ansible.errors import AnsibleError
from ansible.template import Templar, trust_as_template
from ansible_collections.coderstack.platform.plugins.strategy import accelerated

def render(template, **variables):
    return Templar(variables=variables).template(trust_as_template(template))

def renders():
    out = [render("{{ x + 1 }}", x=1), render("{{ x + 1 }}", x=5), render("{{ x ~ '-' ~ y }}", x="a", y="b")]
    out += [render("{{ 'a\\\\1' | regex_replace('a', 'b') }}"), render("{% if x %}{{ x }}{% endif %}", x=3)]
    return out

plain = renders()  # without the cache
accelerated._template_code_cache()
accelerated._template_code_cache()  # a second play: installed once
parsed = []
parse = AnsibleEnvironment._parse
AnsibleEnvironment._parse = lambda self, source, *a, **k: parsed.append(str(source)) or parse(self, source, *a, **k)
cached = renders()
errors = 0
for _ in range(2):
    try:
        render("{{ x + }}", x=1)
    except AnsibleError:
        errors += 1
print(cached == plain, cached[:3], parsed.count("{{ x + 1 }}"), parsed.count("{{ x + }}"), errors)
"""


def test_a_template_string_is_compiled_once_and_rendered_with_each_tasks_variables():
    """The code of a template string is kept (keyed on the string and the environment's compile settings): the same
    string with other variables renders their values, without being parsed again, and every render is what it is
    without the cache; one that fails to compile fails (and is parsed) every time."""
    e = dict(os.environ, PYTHONPATH=COLLECTIONS, CODERSTACK_MITOGEN="0")
    out = subprocess.run([sys.executable, "-c", CODE_CACHE], env=e, capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip() == "True [2, 6, 'a-b'] 1 2 2", out.stdout


PRELOAD = r"""
import os
from ansible.utils.collection_loader._collection_finder import _AnsibleCollectionFinder

_AnsibleCollectionFinder(paths=[os.environ["COLLECTIONS"]], scan_sys_paths=True)._install()
from ansible_collections.coderstack.platform.plugins.module_utils import preload

print([name for name in preload.MODULES if not preload.import_module(name)], preload.import_module("no.such.module"))
"""


def test_every_module_the_warm_up_imports_exists():
    """The warm-up's list names modules of the kubernetes client, kubernetes.core and this collection: each one
    imports here (a release that renames one would leave it silently unwarmed)."""
    e = dict(os.environ, COLLECTIONS=COLLECTIONS)
    out = subprocess.run([sys.executable, "-c", PRELOAD], env=e, capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip() == "[] False", out.stdout
