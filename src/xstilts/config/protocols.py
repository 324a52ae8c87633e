"""Named protocols: values that ``protocol: <name>`` makes the defaults of the config fields they cover.

The per-task fine-tuning values (epochs, batch size, max length per target) are part of each task's definition
(``xstilts.tasks.protocol``); ``XSTILTS_2020_PER_TASK`` lists them with their sources for the README table.
"""

from __future__ import annotations

# (phase, field, value, source): the values a named protocol makes the defaults, each with where it comes from.
# Phases: "experiment" (top-level fields), "intermediate" (intermediate.train), "target" (targets[].train, over
# the per-task values above). The paper's text was not at hand to check; every value follows the authors' scripts
# in nyu-mll/jiant (paths at its 2022 HEAD; the XTREME scripts are unchanged since 2020-08).
JIANT = "nyu-mll/jiant"
SIMPLE = f"{JIANT} jiant/proj/simple/runscript.py"
XTREME_SCRIPTS = f"{JIANT} jiant/scripts/benchmarks/xtreme"
XSTILTS_2020 = [
    ("experiment", "head_pooling", "cls", f"{JIANT} jiant/proj/main/modeling/taskmodels.py: pooled = unpooled[:, 0]"),
    ("intermediate", "recipe", "full", f"{JIANT} guides/projects/xstilts.md: fine-tune the whole model"),
    ("intermediate", "head", "mlp", f"{JIANT} jiant/proj/main/modeling/heads.py: ClassificationHead, RegressionHead"),
    ("intermediate", "lr", 1e-5, f"{SIMPLE} L59: learning_rate default 1e-5"),
    ("intermediate", "batch_size", 4, f"{JIANT} guides/projects/xstilts.md: --train_batch_size 4"),
    ("intermediate", "grad_accum", 1, f"{JIANT} jiant/proj/main/scripts/configurator.py L252: default 1"),
    ("intermediate", "epochs", 3, f"{SIMPLE} L40: num_train_epochs default 3"),
    ("intermediate", "max_length", 256, f"{SIMPLE} L39: max_seq_length default 256"),
    ("intermediate", "warmup_ratio", 0.1, f"{JIANT} jiant/proj/main/scripts/configurator.py L258: 0.1"),
    (
        "intermediate",
        "select_on_dev",
        False,
        f"{SIMPLE} L50, L53: eval_every_steps 0 and no_improvements_for_n_evals 0, so the final weights are kept",
    ),
    ("target", "recipe", "full", f"{XTREME_SCRIPTS}/subscripts/e_run_models.sh: --do_train from the loaded model"),
    ("target", "head", "mlp", f"{JIANT} jiant/proj/main/modeling/heads.py: ClassificationHead, RegressionHead"),
    ("target", "lr", 1e-5, f"{XTREME_SCRIPTS}/subscripts/e_run_models.sh: --learning_rate 1e-5"),
    ("target", "select_on_dev", True, f"{JIANT} jiant/proj/main/runscript.py L164-166: load_best_model=True"),
    ("target", "eval_every_steps", 1000, f"{XTREME_SCRIPTS}/subscripts/e_run_models.sh: --eval_every_steps 1000"),
    ("target", "eval_subset", 500, f"{XTREME_SCRIPTS}/xtreme_runconfig_writer.py L48: eval_subset_num 500"),
    (
        "target",
        "early_stopping_patience",
        30,
        f"{XTREME_SCRIPTS}/subscripts/e_run_models.sh: --no_improvements_for_n_evals 30",
    ),
]
# the per-task values above, for the provenance table: (field, value, source)
XSTILTS_2020_PER_TASK = [
    (
        "epochs",
        "XNLI 2, PAWS-X 5, UD-POS 10, PAN-X 10, XQuAD/MLQA/TyDiQA 2",
        f"{XTREME_SCRIPTS}/subscripts/d_write_configs.sh L15-63",
    ),
    ("batch_size", "32 (4 x 8 accumulation); QA 16 (4 x 4)", f"{XTREME_SCRIPTS}/subscripts/d_write_configs.sh"),
    ("max_length", "256; QA 384; retrieval 512", f"{XTREME_SCRIPTS}/subscripts/c_tokenize_and_cache.sh"),
    ("warmup_ratio", "0.1", f"{XTREME_SCRIPTS}/xtreme_runconfig_writer.py L44"),
    ("retrieval layer", "14 of 24, mean pooling", f"{XTREME_SCRIPTS}/xtreme_runconfig_writer.py L56, L120-123"),
    ("train data", "XNLI on MNLI, XQuAD/MLQA on SQuAD v1.1", f"{XTREME_SCRIPTS}/xtreme_runconfig_writer.py L22-30"),
]
NAMED = {"xstilts-2020": XSTILTS_2020}


def named_defaults(name: str, phase: str) -> dict:
    """The fields a named protocol sets for one phase."""
    return {field: value for p, field, value, _ in NAMED[name] if p == phase}
