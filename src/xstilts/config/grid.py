"""The ``grid:`` and ``arms:`` blocks: one experiment as the cross product of field values, each point a full
config; arms are named variants of the whole config (mappings merge, other values replace), each with its grid.

A grid key is a dotted field path (``model``, ``intermediate.train.lr``); in ``targets`` the segment after
``targets`` names a target task or is ``*`` for every target (``targets.*.train.lr``). Missing mappings are
created, values are substituted as they are, and each point is validated like the YAML itself.
"""

from __future__ import annotations

import copy
import itertools
import types
import typing
from typing import Any

from pydantic import BaseModel, ValidationError

from xstilts.config.schema import ExperimentConfig
from xstilts.config.yaml_file import first_error, fmt_loc
from xstilts.errors import UserError

NOT_AXES = {
    ("seeds",): "seeds already cross with every job: list them in seeds",
    ("intermediate", "settings"): "settings already cross with every job: list them in intermediate.settings",
    ("trackers",): "how jobs are logged, not what they compute",
    ("resources",): "what jobs ask of a cluster, not what they compute",
    ("accelerate",): "how training jobs are launched",
    ("report",): "how results are read, not what they are",
}

Loc = tuple[Any, ...]


class GridError(UserError):
    """A bad grid entry at ``loc`` (``("grid", key, ...)``); ``load_config`` adds the file and line."""

    def __init__(self, loc: Loc, msg: str):
        super().__init__(f"{fmt_loc(loc)}: {msg}")
        self.loc, self.msg = loc, msg


def _model_of(annotation: Any) -> tuple[type[BaseModel] | None, bool]:
    """(model class, whether a list of it) of a field annotation; (None, False) for a plain value."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType) and len(args) == 1:  # X | None
        return _model_of(args[0])
    if origin is list and args:  # a list of models (targets), or a plain value
        inner = _model_of(args[0])[0]
        return inner, inner is not None
    return (annotation, False) if isinstance(annotation, type) and issubclass(annotation, BaseModel) else (None, False)


def _locs(cfg: ExperimentConfig, key: str) -> list[Loc]:
    """The config locations a grid key stands for (one per target for ``targets.*``)."""
    model: type[BaseModel] | None = ExperimentConfig
    many, locs, walked = False, [()], ""
    for part in key.split("."):
        if many:  # the segment after 'targets'
            names = [t.task for t in cfg.targets]
            if part != "*" and part not in names:
                raise GridError(("grid", key), f"no target {part!r} (targets: {', '.join(names)}; or * for all)")
            locs = [(*loc, i) for loc in locs for i, name in enumerate(names) if part in ("*", name)]
            many = False
        elif model is None:
            raise GridError(("grid", key), f"{walked} is a value, not a mapping of fields")
        elif part not in model.model_fields or part == "grid":
            fields = ", ".join(f for f in model.model_fields if f != "grid")
            raise GridError(("grid", key), f"unknown field {part!r} in {walked or 'the experiment'} (fields: {fields})")
        else:
            locs = [(*loc, part) for loc in locs]
            model, many = _model_of(model.model_fields[part].annotation)
        walked = f"{walked}.{part}" if walked else part
    for no, why in NOT_AXES.items():
        if any(no[: len(loc)] == loc for loc in locs):
            raise GridError(("grid", key), f"{fmt_loc(no)} is not a grid axis ({why})")
    if many or not isinstance(locs[0][-1], str):
        raise GridError(("grid", key), "expected a field of a target: targets.<task or *>.<field>")
    return locs


def _prefix(a: Loc, b: Loc) -> bool:
    return a == b[: len(a)] or b == a[: len(b)]


def _set(data: dict, loc: Loc, value: Any) -> None:
    for k in loc[:-1]:
        if not isinstance(k, int) and data.get(k) is None:
            data[k] = {}
        data = data[k]
    data[loc[-1]] = value


# what an arm may not change: how the whole run is launched, logged and reported
NOT_IN_ARMS = ("name", "protocol", "arms", "trackers", "resources", "accelerate", "report")


def _merged(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in over.items():
        both = isinstance(value, dict) and isinstance(out.get(key), dict)
        out[key] = _merged(out[key], value) if both else copy.deepcopy(value)
    return out


def variants(cfg: ExperimentConfig) -> list[tuple[dict[str, Any], ExperimentConfig]]:
    """(grid point ``{key: value}``, its validated config without grid or arms) for every point of every arm
    (``{"arm": name}`` in the point) and of the cross product of its grid (keys in their order); ``[({}, cfg)]``
    without either. Bad grids and arms raise GridError."""
    if not cfg.arms:
        return _grid_variants(cfg)
    base = cfg.model_dump(exclude_unset=True, exclude={"arms"})
    out = []
    for name, over in cfg.arms.items():
        if bad := [k for k in over if k in NOT_IN_ARMS]:
            raise GridError(("arms", name, bad[0]), "set for the whole experiment, not per arm")
        try:
            arm = ExperimentConfig.model_validate(_merged(base, over))
        except ValidationError as e:
            loc, msg = first_error(e)
            if loc and loc[0] in over:
                raise GridError(("arms", name, *loc), msg) from None
            raise GridError(("arms", name), f"{fmt_loc(loc)}: {msg}") from None
        try:
            out += [({"arm": name} | point, variant) for point, variant in _grid_variants(arm)]
        except GridError as e:
            raise GridError(("arms", name, *e.loc), e.msg) from None
    return out


def _grid_variants(cfg: ExperimentConfig) -> list[tuple[dict[str, Any], ExperimentConfig]]:
    if not cfg.grid:
        return [({}, cfg)]
    locs = {key: _locs(cfg, key) for key in cfg.grid}
    for a, b in itertools.combinations(cfg.grid, 2):
        if any(_prefix(x, y) for x in locs[a] for y in locs[b]):
            raise GridError(("grid", b), f"overlaps grid key {a!r}")
    base = cfg.model_dump(exclude_unset=True, exclude={"grid"})  # unset fields stay unset: protocol defaults apply
    out = []
    for index in itertools.product(*(range(len(values)) for values in cfg.grid.values())):
        point = {key: cfg.grid[key][i] for key, i in zip(cfg.grid, index)}
        data = copy.deepcopy(base)
        for key, value in point.items():
            for loc in locs[key]:
                _set(data, loc, value)
        try:
            out.append((point, ExperimentConfig.model_validate(data)))
        except ValidationError as e:  # blamed on the first grid key at or around the failing field
            loc, msg = first_error(e)
            key, i = next(
                ((k, i) for k, i in zip(cfg.grid, index) if any(_prefix(x, loc) for x in locs[k])),
                (next(iter(cfg.grid)), index[0]),
            )
            raise GridError(("grid", key, i), msg if loc in locs[key] else f"{fmt_loc(loc)}: {msg}") from None
    return out
