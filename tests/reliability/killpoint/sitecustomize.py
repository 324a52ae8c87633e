"""Fault injection for the kill harness: every Python process started with this folder on PYTHONPATH loads it.

With neither variable below set it does nothing. Otherwise it wraps the functions of each stage of a run (the
function object itself, so every module that imported it by name calls the wrapper) and:

- ``XSTILTS_KILLTRACE=<file>``: appends one JSON line per finished call: its stage, function, call number, start
  (seconds since the process began), duration and the I/O events inside it (``os.replace``, ``os.fsync``,
  ``shutil.rmtree`` and the stage's own inner steps, such as each result the index reads);
- ``XSTILTS_KILLPOINT=<json>``: sends SIGKILL to the whole process group at one moment, after appending a line
  that says where to ``XSTILTS_KILLLOG``. The moment is ``{"seconds": t}`` after start, or after the start
  of a call (``{"after": {"function", "call"}, "seconds": t}``, whether or not it has returned by then), or
  in a call of one function: ``{"function", "call", "point"}`` with point ``["io", n]`` (just before the n-th I/O event),
  ``["time", s]`` (s seconds into the call) or ``["exit"]`` (just after it returns). A call that returns
  before its point is reached is killed on its way out, so the kill always lands in the chosen call.
"""

from __future__ import annotations

import functools
import importlib
import json
import os
import shutil
import signal
import threading
import time
import types

STAGES = {
    "tokenization": ["xstilts.tasks.features:task_features"],
    "training": ["xstilts.train.loop:train"],
    "checkpoint": ["xstilts.train.loop:_save_state", "xstilts.models.backbone:save_backbone"],
    "evaluation": [
        "xstilts.evaluate.zero_shot:dev_metrics",
        "xstilts.evaluate.zero_shot:evaluate",
        "xstilts.evaluate.zero_shot:evaluate_encoder",
    ],
    "predictions": ["xstilts.evaluate.official_files:write_official", "xstilts.metrics.per_example:write"],
    "result": ["xstilts.experiments.rundir:RunDir.write_result"],
    "index": ["xstilts.experiments.index:refresh"],
}
INNER_EVENTS = ["xstilts.experiments.index:_read_result"]  # one I/O event each: a result read into the index

_START = time.monotonic()
_fsync = os.fsync  # the kill log's own, not counted as an I/O event
_lock = threading.RLock()
_active: list[dict] = []  # the calls under way, outermost first
_calls: dict[str, int] = {}


def _stage(function: str) -> str:
    return next(s for s, fs in STAGES.items() if function in fs)


def _kill(where: dict) -> None:
    with _lock:
        line = {**where, "active": [_stage(c["function"]) for c in _active], "at": round(time.monotonic() - _START, 3)}
        with open(os.environ["XSTILTS_KILLLOG"], "a", encoding="utf-8") as log:
            log.write(json.dumps(line) + "\n")
            log.flush()
            _fsync(log.fileno())
        os.killpg(os.getpgid(0), signal.SIGKILL)


def _timer(seconds: float, where: dict) -> None:
    timer = threading.Timer(seconds, _kill, (where,))
    timer.daemon = True  # a run that ends first is not held back
    timer.start()


def _io_event(name: str) -> None:
    """Count an I/O event in every active call; kill before it if it is the chosen one."""
    with _lock:
        for call in _active:
            call["io"] += 1
            point = call.get("point")
            if point and point[0] == "io" and call["io"] == point[1]:
                _kill({"function": call["function"], "call": call["n"], "point": point, "event": name})


def _call(function: str, original, *args, **kwargs):
    with _lock:
        n = _calls.get(function, 0)
        _calls[function] = n + 1
        call = {"function": function, "n": n, "io": 0, "start": time.monotonic() - _START}
        spec = _SPEC or {}
        if spec.get("after") == {"function": function, "call": n}:  # a moment counted from this call's start
            _timer(spec["seconds"], {"after": spec["after"], "seconds": spec["seconds"]})
        if spec.get("function") == function and spec.get("call") == n:
            call["point"] = spec["point"]
            if spec["point"][0] == "time":
                where = {"function": function, "call": n, "point": spec["point"]}
                _timer(spec["point"][1], where)
        _active.append(call)
    try:
        return original(*args, **kwargs)
    finally:
        with _lock:
            if "point" in call:  # its point was not reached before it returned
                _kill({"function": function, "call": n, "point": call["point"], "event": "exit"})
            _active.remove(call)
            if _TRACE:
                record = {"stage": _stage(function)} | {k: call[k] for k in ("function", "n", "io", "start")}
                record["seconds"] = time.monotonic() - _START - call["start"]
                with open(_TRACE, "a", encoding="utf-8") as trace:
                    trace.write(json.dumps(record) + "\n")


def _inner(name: str, original, *args, **kwargs):
    _io_event(name)
    return original(*args, **kwargs)


def _wrap(target: str, handler) -> None:
    """Make the function ``module:qualname`` call ``handler(target, original, *args, **kwargs)``, by giving the
    function object new code (it has no closure), so references imported by name see it too."""
    module_name, qualname = target.split(":")
    owner = importlib.import_module(module_name)
    *path, name = qualname.split(".")
    for part in path:
        owner = getattr(owner, part)
    func = getattr(owner, name)
    original = types.FunctionType(func.__code__, func.__globals__, func.__name__, func.__defaults__, None)
    original.__kwdefaults__ = func.__kwdefaults__
    hook = f"__killpoint_{abs(hash(target))}__"
    func.__globals__[hook] = functools.partial(handler, target, original)
    namespace: dict = {}
    exec(f"def {name}(*args, **kwargs):\n    return {hook}(*args, **kwargs)\n", func.__globals__, namespace)  # noqa: S102
    func.__code__ = namespace[name].__code__


def _patch_io() -> None:
    for module, name in ((os, "replace"), (os, "fsync"), (shutil, "rmtree")):
        setattr(module, name, functools.partial(_inner, f"{module.__name__}.{name}", getattr(module, name)))


def _install() -> None:
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")  # the run imports transformers earlier than usual
    _patch_io()
    for target in INNER_EVENTS:
        _wrap(target, _inner)
    for functions in STAGES.values():
        for target in functions:
            _wrap(target, _call)
    if _SPEC and "seconds" in _SPEC and "after" not in _SPEC:
        _timer(_SPEC["seconds"], {"seconds": _SPEC["seconds"]})


_TRACE = os.environ.get("XSTILTS_KILLTRACE")
_SPEC = json.loads(os.environ["XSTILTS_KILLPOINT"]) if os.environ.get("XSTILTS_KILLPOINT") else None
if _TRACE or _SPEC:
    _install()
