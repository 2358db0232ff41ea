# -*- coding: utf-8 -*-
# Copyright: coderstack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Strategy coderstack.platform.accelerated: Ansible's linear strategy, run through Mitogen when it is installed."""

from __future__ import annotations

DOCUMENTATION = r"""
name: accelerated
short_description: The linear strategy, with Mitogen's persistent module runner when it is installed
description:
  - Runs plays exactly as the C(linear) strategy does (task by task, every host), but, when the C(mitogen) Python
    package is installed on the controller, through Mitogen's C(mitogen_linear). Modules then run in a persistent
    Python interpreter instead of a new process per task, so the kubernetes client is imported and its API discovery
    done once per run instead of once per task.
  - Mitogen's planner lists every installed collection before each collection module runs, and keeps that answer
    only in the task's worker process, forked anew for every task (about 0.15 s a task with the C(ansible) package's
    collections). This strategy computes the list once per run, before the workers fork, and hands it to the planner.
  - Ansible builds its Jinja lexer and loads its Jinja filters and tests on first use, which is in each task's worker
    process; this strategy does both before the workers fork, so they inherit them (with and without Mitogen).
  - Ansible compiles a template string each time it renders it; this strategy keeps the compiled code of each string
    for the run (keyed on the string and the Jinja environment's compile settings), in its process and so in the
    workers forked from it. Every render still gets its own template object, with its own variables.
  - When a host's Mitogen interpreter is the controller's own Python (a local connection with
    C(ansible_python_interpreter={{ ansible_playbook_python }}), as coderstack's inventories have), that interpreter
    imports C(ansible) and C(ansible_mitogen) from the same files the controller runs (with their bytecode caches)
    instead of receiving them from the controller as source to compile, and Mitogen does not push modules to it ahead.
    Any other connection is as Mitogen makes it.
  - At the start of a run's first play, a worker process starts each host's Mitogen interpreter (the connection the
    tasks will use) and imports there, one module at a time, the libraries the modules import (the kubernetes client,
    the module_utils of kubernetes.core and of this collection), while the play's first tasks run. It reports
    nothing and counts as no task; a host it cannot reach is reported by the first real task. The environment variable
    C(CODERSTACK_WARM_UP=0) switches it off.
  - Tasks whose action only computes on the controller (C(assert), C(debug), C(fail), C(set_fact),
    C(validate_argument_spec)), includes, and tasks their C(when) skips (no loop) run in the strategy's own process,
    on a copy of the task, instead of a worker process forked for each. The same executor, the same result on the
    same results queue, without a fork (about 20 ms a task on this machine). Not for delegated or async tasks.
  - That path uses ansible-core's executor internals as of the pinned 2.19 (the worker's own steps); with another
    ansible-core, or to rule it out, C(CODERSTACK_IN_PROCESS=0) forks for every task again.
  - Without C(mitogen), or with the environment variable C(CODERSTACK_MITOGEN=0), it is the plain C(linear) strategy.
  - coderstack's C(ansible.cfg) selects it; nothing else changes for the playbooks.
author:
  - coderstack maintainers (@coderstack)
"""

import os

from ansible.plugins.loader import strategy_loader
from ansible.utils.display import Display

_display = Display()


def _switched_off(variable):
    """True when the environment variable (a switch of this strategy, on by default) says 0, false, no or off."""
    return os.environ.get(variable, "1").lower() in ("0", "false", "no", "off")


def _mitogen_mixin():
    """Mitogen's strategy mixin, or None when Mitogen is not wanted or not installed."""
    if _switched_off("CODERSTACK_MITOGEN"):
        return None
    try:
        import ansible_mitogen.loaders  # patches the plugin loaders first
        import ansible_mitogen.strategy
    except ImportError:
        _display.vvv("coderstack.platform.accelerated: mitogen is not installed, running as linear")
        return None
    return ansible_mitogen.strategy.StrategyMixin


def _collection_dirs_once():
    """Mitogen's planner lists every installed collection before each collection module runs (its cache of the answer
    lives in the task's worker process, forked anew for every task): with the ~100 collections of the `ansible`
    package that is about 0.15 s per task. The answer cannot change during a run, so it is computed once, in the
    strategy's process, before the workers are forked, and the planner is given that list."""
    from ansible.collections.list import list_collection_dirs
    from ansible_mitogen import planner

    if not callable(getattr(planner, "_load_collections", None)):  # another Mitogen: leave it as it is
        _display.vvv("coderstack.platform.accelerated: this Mitogen has no _load_collections, not cached")
        return
    if getattr(planner._load_collections, "coderstack_cached", False):
        return
    dirs = [d.decode("utf-8") if isinstance(d, bytes) else d for d in list_collection_dirs()]

    def _load_collections(invocation):
        invocation._extra_sys_paths.update(dirs)

    _load_collections.coderstack_cached = True
    planner._load_collections = _load_collections


def _same_interpreter(connection):
    """True when a Mitogen connection starts, on this machine, the very Python interpreter (same path, so the same
    virtualenv and site-packages) that runs ansible-playbook: a local connection with
    ansible_python_interpreter={{ ansible_playbook_python }}, as coderstack's inventories have."""
    import sys

    import mitogen.parent

    path = connection.options.python_path
    if isinstance(path, list):
        path = path[0] if len(path) == 1 else None
    return (
        connection.__class__ is mitogen.parent.Connection  # "local": not ssh, sudo, a container, ...
        and isinstance(path, str)
        and os.path.abspath(path) == os.path.abspath(sys.executable)
    )


def _local_imports_from_disk():
    """Mitogen serves `ansible`, `ansible_mitogen` and the collections from the controller to the target's
    interpreter, as source it minifies, and the target compiles (no bytecode cache): right for another machine,
    0.3 s of the first task's 0.8 s here, where the target interpreter is the controller's own and reads the very same
    files. For such a connection the target imports `ansible` and `ansible_mitogen` itself (from the same
    site-packages, with their bytecode caches), and the modules Mitogen would push to it ahead are not pushed.
    Collections (`ansible_collections`, found by Ansible's collection loader on the controller) and Mitogen itself
    are still served. Every other connection is as Mitogen makes it."""
    import mitogen.master
    import mitogen.parent

    if getattr(mitogen.parent.Connection.get_econtext_config, "coderstack", False):
        return
    get_config = mitogen.parent.Connection.get_econtext_config
    forward_modules = mitogen.master.ModuleResponder.forward_modules
    local_contexts = set()

    def get_econtext_config(self):
        config = get_config(self)
        if _same_interpreter(self):
            config["import_overrides"] = [
                name for name in config["import_overrides"] if name not in ("ansible", "ansible_mitogen")
            ]
            local_contexts.add(self.context.context_id)
        return config

    def forward_modules_unless_local(self, context, fullnames):
        if context.context_id not in local_contexts:
            forward_modules(self, context, fullnames)

    get_econtext_config.coderstack = True
    mitogen.parent.Connection.get_econtext_config = get_econtext_config
    mitogen.master.ModuleResponder.forward_modules = forward_modules_unless_local


def _templating_once():
    """Ansible builds its Jinja lexer, and loads the Jinja filters and tests of ansible.builtin, on first use: in each
    task's worker process, forked anew for every task, so every task built and loaded them again (a few hundred
    regular expressions, every filter and test file). Both are cached in objects the workers inherit: done here,
    before the workers fork, each task finds them ready."""
    try:
        from ansible.plugins.loader import filter_loader, test_loader
        from ansible.template import Templar, trust_as_template

        Templar().evaluate_expression(trust_as_template("0"))
        filter_loader.get("ansible.builtin.combine")  # loads ansible.builtin's filters (one scan for all)
        test_loader.get("ansible.builtin.match")  # and its tests
    except Exception as e:  # noqa: BLE001 - only a warm-up: a run without it is as correct
        _display.vvv(f"coderstack.platform.accelerated: templating was not prepared ahead: {e}")


def _template_code_cache():
    """Ansible (2.19) compiles every template string it renders (Jinja parses it, generates Python source, and
    Python compiles that): again for each task, though most strings are the same ones (a role default, a task
    argument, the shared connection values) in every task that uses them; about a tenth of an unchanged run's time
    in this process. The code a string compiles to depends only on the string and on the Jinja environment's
    compile-time settings, so it is kept, keyed on both, in this process (the workers forked from it inherit what
    it holds); each render still gets a new template, bound to its own environment. Only plain compilations are
    kept: a string that fails to compile is compiled (and reported) every time, and Ansible's template debugging
    mode is left alone."""
    from ansible._internal._templating import _jinja_bits

    env_class = _jinja_bits.AnsibleEnvironment
    if getattr(env_class.compile, "coderstack_cached", False):
        return
    compile_source = env_class.compile
    codes = {}

    def settings(env):
        lexer = tuple(
            getattr(env, name)
            for name in (
                "block_start_string",
                "block_end_string",
                "variable_start_string",
                "variable_end_string",
                "comment_start_string",
                "comment_end_string",
                "line_statement_prefix",
                "line_comment_prefix",
                "trim_blocks",
                "lstrip_blocks",
                "newline_sequence",
                "keep_trailing_newline",
            )
        )
        compile_context = _jinja_bits._TemplateCompileContext.current(optional=True)
        return (
            type(env),
            env.code_generator_class,
            lexer,
            env.optimized,
            env.is_async,
            env.autoescape if isinstance(env.autoescape, bool) else id(env.autoescape),
            env.finalize is not None,
            tuple(env.extensions),
            compile_context.escape_backslashes if compile_context else None,
        )

    def compile(self, source, name=None, filename=None, raw=False, defer_init=False):
        if (
            not isinstance(source, str)
            or name is not None
            or filename is not None
            or raw
            or getattr(self, "_debuggable_template_source", False)
            or _jinja_bits._CompileStateSmugglingCtx.current(optional=True)
        ):
            return compile_source(self, source, name, filename, raw, defer_init)
        try:
            key = (str(source), defer_init, settings(self))
        except Exception:  # noqa: BLE001 - an environment this does not know: compiled as Ansible does
            return compile_source(self, source, name, filename, raw, defer_init)
        code = codes.get(key)
        if code is None:
            code = compile_source(self, source, name, filename, raw, defer_init)
            if len(codes) < 20000:
                codes[key] = code
        return code

    compile.coderstack_cached = True
    env_class.compile = compile


# Actions that run on the controller and only compute (no module, no connection, no file written), and includes
# (which the executor only templates): their task is run in the strategy's own process instead of a forked worker.
_IN_PROCESS = frozenset(
    f"{prefix}{name}"
    for prefix in ("", "ansible.builtin.", "ansible.legacy.")
    for name in ("assert", "debug", "fail", "set_fact", "validate_argument_spec", "include_tasks", "include_role")
)


def _in_process_wanted(task, task_vars):
    """A controller-only action, or any task its `when` skips (the executor then only evaluates that condition)."""
    if _switched_off("CODERSTACK_IN_PROCESS"):
        return False
    if task.delegate_to or task.async_val:
        return False
    return task.action in _IN_PROCESS or _skipped(task, task_vars)


def _skipped(task, task_vars):
    """True when the task's `when` is false with the task's variables (no loop: a loop's `when` is per item). A
    condition that cannot be evaluated here is left to the worker, which reports it as it always does."""
    if not task.when or task.loop is not None or task.loop_with:
        return False
    try:
        return not task._resolve_conditional(task.when, task_vars)
    except Exception:  # noqa: BLE001 - decided in the worker instead
        return False


def _run_in_process(strategy, host, task, task_vars, play_context):
    """What a worker process does for one task (TaskExecutor, then the result on the results queue), in this process,
    on a copy of the task (the executor templates it in place; a worker's changes vanish with the worker)."""
    from ansible._internal import _task
    from ansible._internal._errors import _error_utils
    from ansible.executor.task_executor import TaskExecutor
    from ansible.executor.task_result import _RawTaskResult
    from ansible.plugins import loader as plugin_loader

    strategy._queued_task_cache[(host.name, task._uuid)] = {
        "host": host,
        "task": task,
        "task_vars": task_vars,
        "play_context": play_context,
    }
    strategy._tqm.send_callback("v2_runner_on_start", host, task)
    strategy._pending_results += 1
    run_task = task.copy()
    try:
        with _task.TaskContext(run_task):
            result = TaskExecutor(
                host,
                run_task,
                task_vars,
                play_context,
                strategy._loader,
                plugin_loader.get_plugin_loader_namespace(),
                strategy._final_q,
                strategy._variable_manager,
            ).run()
    except Exception as e:  # noqa: BLE001 - as a worker: the failure is the task's result
        result = _error_utils.result_dict_from_exception(e)
    strategy._final_q.send_task_result(
        _RawTaskResult(host=host, task=run_task, return_data=result, task_fields=run_task.dump_attrs())
    )


# Set once the warm-up has started (it is once per ansible-playbook run, at its first play).
_WARMED = []


class _Discard:
    """The warm-up's results queue: what it reports is not a task's, and goes nowhere."""

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


def _warm_up_worker_class():
    from ansible.executor.process.worker import WorkerProcess
    from ansible.executor.task_executor import TaskExecutor
    from ansible_collections.coderstack.platform.plugins.module_utils import preload

    class WarmUpWorker(WorkerProcess):
        """A worker as any task's, running `ansible.builtin.ping` (so Mitogen starts the target's interpreter with
        the connection the tasks will use), then the target imports what the modules import."""

        def _run(self):
            executor = TaskExecutor(
                self._host,
                self._task,
                self._task_vars,
                self._play_context,
                self._loader,
                self._shared_loader_obj,
                self._final_q,
                self._variable_manager,
            )
            result = executor.run()
            connection = getattr(executor, "_connection", None)
            if result.get("failed") or result.get("unreachable") or not hasattr(connection, "get_chain"):
                return  # the first real task meets the same problem and reports it
            try:
                chain = connection.get_chain()
                for name in preload.MODULES:  # one call each: a task's module run may come between two
                    chain.call(preload.import_module, name)
            finally:
                connection.close()

    return WarmUpWorker


def _warm_up(strategy, iterator, play_context):
    """Once per run, at the start of the first play: for each of its hosts (up to `forks`), a worker process starts
    the host's Mitogen interpreter and imports there what the modules will import (the kubernetes client, the
    module_utils of kubernetes.core and of this collection), while this process goes on with the play. The first
    tasks that run a module then find the interpreter ready instead of starting it (about 0.5 s) and importing (about
    0.5 s). Its outcome is not a task's: no callback, no result; a failure is the first real task's to report."""
    from ansible.playbook.block import Block
    from ansible.playbook.task import Task
    from ansible.plugins import loader as plugin_loader

    _WARMED.append(True)
    worker_class = _warm_up_worker_class()
    hosts = strategy._inventory.get_hosts(iterator._play.hosts)
    for host in hosts[: max(1, strategy._tqm._forks)]:
        task = Task.load(
            {"action": "ansible.builtin.ping", "name": "coderstack warm-up"},
            block=Block(play=iterator._play),
            variable_manager=strategy._variable_manager,
            loader=strategy._loader,
        )
        task_vars = strategy._variable_manager.get_vars(
            play=iterator._play,
            host=host,
            task=task,
            _hosts=strategy._hosts_cache,
            _hosts_all=strategy._hosts_cache_all,
        )
        worker = worker_class(
            final_q=_Discard(),
            task_vars=task_vars,
            host=host,
            task=task,
            play_context=play_context,
            loader=strategy._loader,
            variable_manager=strategy._variable_manager,
            shared_loader_obj=plugin_loader.get_plugin_loader_namespace(),
            worker_id=-1,
            cliargs=None,
        )
        # daemonic: a warm-up still running when the run ends (a short --tags run) is stopped, not waited for
        worker.daemon = True
        worker.start()
        _WARMED.append(worker)


_Linear = strategy_loader.get("linear", class_only=True)
_Mixin = _mitogen_mixin()
if _Mixin:
    _local_imports_from_disk()


class _WarmUpLinear(_Linear):
    """linear, which starts the warm-up at the start of the run's first play: below Mitogen's mixin, whose run() sets up
    what a worker needs to reach Mitogen (the connection plug-ins, the connection multiplexer)."""

    def run(self, iterator, play_context):
        if not _WARMED and not _switched_off("CODERSTACK_WARM_UP"):
            try:
                _warm_up(self, iterator, play_context)
            except Exception as e:  # noqa: BLE001 - only a warm-up: the run is as correct without it
                _display.vvv(f"coderstack.platform.accelerated: no warm-up: {e}")
        return super().run(iterator, play_context)


class StrategyModule(*((_Mixin, _WarmUpLinear) if _Mixin else ()), _Linear):
    """linear (through Mitogen's mixin when it is there), prepared before the workers fork, with controller-only
    tasks run in this process."""

    def run(self, iterator, play_context):
        if _Mixin:
            _collection_dirs_once()  # in this process, before any task's worker is forked
        _templating_once()
        try:
            _template_code_cache()
        except Exception as e:  # noqa: BLE001 - an ansible-core this does not know: templates compile as before
            _display.vvv(f"coderstack.platform.accelerated: template code is not kept: {e}")
        return super().run(iterator, play_context)

    def _queue_task(self, host, task, task_vars, play_context):
        if _in_process_wanted(task, task_vars):
            return _run_in_process(self, host, task, task_vars, play_context)
        return super()._queue_task(host, task, task_vars, play_context)
