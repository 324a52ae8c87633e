"""Checking an experiment's cross-references against a task catalog, before any job is planned or run.

The schema (``xstilts.config``) validates a config on its own; here every name it uses is looked up: the
model, the intermediate and target tasks, heads that tasks share, ``select_by``, ``loss_weights`` keys and
``eval.languages``, in every grid point. A problem is one :class:`Problem` naming the field.
"""

from __future__ import annotations

from pathlib import Path

from xstilts.config.grid import variants
from xstilts.config.load import ConfigFile, load_config
from xstilts.config.schema import MIN_LANGUAGES, NONE_SETTING, ExperimentConfig, TrainConfig
from xstilts.config.yaml_file import fmt_loc
from xstilts.errors import UserError
from xstilts.models.registry import check_model_ref, max_positions
from xstilts.tasks.catalog import TaskCatalog
from xstilts.tasks.definition import TaskDef


class Problem(UserError):
    """A config field that names something the catalog or the model registry does not hold."""

    def __init__(self, loc: tuple, msg: str):
        super().__init__(f"{fmt_loc(loc)}: {msg}")
        self.loc, self.msg = loc, msg


def _select_by(train: TrainConfig, tasks: list[str], loc: tuple) -> None:
    if train.select_by != "macro" and train.select_by not in tasks:
        raise Problem((*loc, "select_by"), f"{train.select_by!r} is neither 'macro' nor one of the tasks {tasks}")


def _loss_weights(train: TrainConfig, tasks: list[str], loc: tuple) -> None:
    if unknown := sorted(set(train.loss_weights) - set(tasks)):
        raise Problem((*loc, "loss_weights"), f"{unknown[0]!r} is not one of the tasks {tasks}")


def shared_heads(tasks: list[TaskDef]) -> None:
    """Tasks naming one head must agree in format and labels."""
    for t in tasks:
        first = next(o for o in tasks if o.head_name == t.head_name)
        if (first.format, first.labels) != (t.format, t.labels):
            raise UserError(
                f"tasks {first.name} and {t.name} share head {t.head_name!r} but differ in format or labels"
            )


def _intermediate(cfg: ExperimentConfig, catalog: TaskCatalog) -> None:
    loc = ("intermediate", "settings")
    for setting in cfg.intermediate.settings:
        if setting == NONE_SETTING:
            continue
        names = setting.split("+")
        for name in names:
            task = catalog.find(name)
            if task is None or not task.format.trains:
                raise Problem(loc, f"unknown intermediate task {name!r} in setting {setting!r}")
        try:
            shared_heads([catalog.get(n, cfg.data_dir) for n in names])
        except UserError as e:
            raise Problem(loc, str(e)) from None
        _select_by(cfg.intermediate.train, names, ("intermediate", "train"))
    mentioned = sorted({n for s in cfg.intermediate.settings if s != NONE_SETTING for n in s.split("+")})
    _loss_weights(cfg.intermediate.train, mentioned, ("intermediate", "train"))


def _targets(cfg: ExperimentConfig, catalog: TaskCatalog) -> None:
    for i, target in enumerate(cfg.targets):
        task = catalog.find(target.task, cfg.data_dir)
        if task is None:
            raise Problem(("targets", i, "task"), f"unknown task {target.task!r} (known: {', '.join(catalog.names())})")
        if task.format.trains:
            _select_by(target.train, [task.name], ("targets", i, "train"))
            _loss_weights(target.train, [task.name], ("targets", i, "train"))
        langs = task.format.test_languages(task)
        if target.eval.languages is not None:
            if unknown := sorted(set(target.eval.languages) - set(langs)):
                raise Problem(
                    ("targets", i, "eval", "languages"),
                    f"{unknown} are not among the languages of {task.name} {list(langs)}",
                )
            langs = target.eval.languages
        zero_shot = sorted(set(langs) - {task.train_language})
        if "tiers" in cfg.report.analyses and len(zero_shot) < MIN_LANGUAGES:
            raise Problem(
                ("report", "analyses"),
                f"'tiers' estimates how the gain varies with a language's resources, which needs at least "
                f"{MIN_LANGUAGES} zero-shot languages; target {task.name} is evaluated zero-shot in "
                f"{len(zero_shot)} ({', '.join(zero_shot) or 'none'})",
            )


def _max_length(cfg: ExperimentConfig, catalog: TaskCatalog) -> None:
    """A max_length the config sets for a phase that runs must fit the model's position embeddings (where they
    are known before loading it)."""
    if (limit := max_positions(cfg.model)) is None:
        return
    phases = []
    if any(s != NONE_SETTING for s in cfg.intermediate.settings):
        phases.append((("intermediate", "train"), cfg.intermediate.train))
    for i, target in enumerate(cfg.targets):
        if catalog.get(target.task, cfg.data_dir).format.trains:
            phases.append((("targets", i, "train"), target.train))
        phases.append((("targets", i, "eval"), target.eval))
    for loc, phase in phases:
        if "max_length" in phase.model_fields_set and phase.max_length > limit:
            raise Problem(
                (*loc, "max_length"), f"{phase.max_length} tokens, but model {cfg.model!r} takes at most {limit}"
            )


def resolve(cfg: ExperimentConfig, catalog: TaskCatalog) -> None:
    """Check every cross-reference of ``cfg`` and of each of its grid points; a Problem on the first bad one."""
    for _, point in variants(cfg):
        try:
            check_model_ref(point.model)
        except ValueError as e:
            raise Problem(("model",), str(e)) from None
        _intermediate(point, catalog)
        _targets(point, catalog)
        _max_length(point, catalog)
    _contrasts(cfg)


def _contrasts(cfg: ExperimentConfig) -> None:
    """'contrasts' corrects over every pair of settings: two settings make a family of one, the gain itself."""
    settings = cfg.intermediate.settings
    if "contrasts" in cfg.report.analyses and len(settings) < 3:
        raise Problem(
            ("report", "analyses"),
            f"'contrasts' compares every pair of intermediate settings with Holm's correction over the pairs, "
            f"which needs at least 3 settings; {settings} make one pair, a family of one (its one difference is "
            f"the gain that 'gains' reports)",
        )


def load_experiment(path: str | Path, tasks_dir: str | Path | None = None) -> tuple[ConfigFile, TaskCatalog]:
    """An experiment file validated and resolved, with its task catalog: the built-in tasks, the config's
    ``tasks_dir`` (relative to the file) and ``tasks_dir`` given here (the command line's)."""
    file = load_config(path)
    catalog = TaskCatalog.builtin()
    for folder in (tasks_dir, file.path.parent / file.cfg.tasks_dir if file.cfg.tasks_dir else None):
        if folder is not None:
            catalog = catalog.with_dir(folder)
    try:
        resolve(file.cfg, catalog)
    except Problem as e:
        raise file.error(e.loc, e.msg) from None
    return file, catalog
