"""Training jobs launched on two processes through `accelerate launch` (DDP and FSDP over gloo on this CPU)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from cli_runs import XSTILTS, job_results


def _no_dropout(tiny_model: str, folder: Path) -> str:
    """The tiny BERT without dropout: two half batches with averaged gradients are then one batch, up to
    floating-point order."""
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    config = AutoConfig.from_pretrained(tiny_model, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    AutoModel.from_pretrained(tiny_model, config=config).save_pretrained(folder)
    AutoTokenizer.from_pretrained(tiny_model).save_pretrained(folder)
    return str(folder)


def _runs(base: dict, launches: dict[str, dict], tmp_path: Path) -> dict[str, dict]:
    """Each launch variant of ``base`` run through the command (a training state after every update)."""
    runs = {}
    for name, extra in launches.items():
        config = tmp_path / f"{name}.yaml"
        config.write_text(yaml.safe_dump({**base, **extra}))
        proc = subprocess.run(
            [XSTILTS, "run", str(config), "--out", str(tmp_path / name), "--checkpoint-every", "0"],
            check=False,
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert proc.returncode == 0, proc.stderr
        runs[name] = job_results(tmp_path / name)
    return runs


def _base(model: str, task_files: Path, **extra) -> dict:
    # full fine-tuning: at this learning rate the probe's large head weights make lp-ft's loss chaotic, and chaos
    # magnifies floating-point order; what is compared here is the distribution, not the recipe
    budget = {"recipe": "full", "batch_size": 8, "lr": 1e-3, "max_length": 32, "max_steps": 20, "select_on_dev": True}
    return {
        "name": "ddp",
        "model": model,
        "tasks_dir": str(task_files),
        "seeds": [1],
        "intermediate": {"settings": ["u-sametopic"], "train": budget},
        "targets": [{"task": "u-topic", "train": budget, "probe_reference": False}],
        **extra,
    }


def test_two_processes_ddp_or_fsdp_train_like_one_process(tiny_model, tiny_task_files, tmp_path):
    base = _base(_no_dropout(tiny_model, tmp_path / "no-dropout"), tiny_task_files)
    launches = {
        "one": {},
        "ddp": {"accelerate": {"num_processes": 2}},
        "fsdp": {"accelerate": {"num_processes": 2, "strategy": "fsdp"}},  # each BertLayer a unit
    }
    runs = _runs(base, launches, tmp_path)
    for two in ("ddp", "fsdp"):
        _assert_same_training(runs["one"], runs[two], tmp_path / "one", tmp_path / two)


def test_two_processes_with_lora_on_a_decoder_train_like_one_process(tiny_decoder, tiny_task_files, tmp_path):
    """LoRA on the tiny Llama (no dropout anywhere, its heads' included), DDP over gloo through accelerate
    launch: the merged hand-off weights of 2 processes equal those of 1 at the same global batch."""
    lora = {"lora": {"rank": 4, "alpha": 8, "dropout": 0.0, "handoff": "merged"}}
    base = _base(tiny_decoder, tiny_task_files, backbone=lora, head_pooling="last")
    runs = _runs(base, {"one": {}, "ddp": {"accelerate": {"num_processes": 2}}}, tmp_path)
    _assert_same_training(runs["one"], runs["ddp"], tmp_path / "one", tmp_path / "ddp")


def _assert_same_training(first: dict, second: dict, first_out: Path, second_out: Path) -> None:
    from safetensors.numpy import load_file

    assert first.keys() == second.keys()  # the launch mode is not part of a job's identity
    for job_id, one in first.items():
        two = second[job_id]
        if one["kind"] == "retrieval":
            continue
        assert (one["train"]["processes"], two["train"]["processes"]) == (1, 2)
        assert two["train"]["examples_seen"] == one["train"]["examples_seen"]  # each process took half a batch
        assert two["train"]["final_loss"] == pytest.approx(one["train"]["final_loss"], rel=1e-4)
        assert [c[0] for c in two["train"]["dev_curve"]] == [c[0] for c in one["train"]["dev_curve"]]
        for a, b in zip(one["metrics"], two["metrics"]):
            assert (a["task"], a["language"], a["metric"]) == (b["task"], b["language"], b["metric"])
            assert b["value"] == pytest.approx(a["value"], abs=2.0)  # a near-tie prediction may flip
        if one["kind"] == "intermediate":
            weights = [
                load_file(out / "jobs" / job_id / "checkpoint" / "model.safetensors") for out in (first_out, second_out)
            ]
            assert weights[0].keys() == weights[1].keys()
            for key, w in weights[0].items():
                np.testing.assert_allclose(weights[1][key], w, atol=1e-5, err_msg=key)
    leftovers = [p for pattern in ("jobs/*/train_state*", "jobs/*/launch.pkl") for p in second_out.glob(pattern)]
    assert not leftovers


def test_a_launched_job_whose_lease_was_taken_over_writes_no_result(tiny_model, tiny_task_files, tmp_path):
    """The fence travels to the launched processes: a worker that lost its lease while its 2-process job trained
    ends the job ``superseded`` and writes no result."""
    from xstilts.experiments.queue import Queue
    from xstilts.experiments.resolve import load_experiment
    from xstilts.experiments.rundir import RunDir
    from xstilts.experiments.worker import Experiment, run_claimed

    config = tmp_path / "launched.yaml"
    config.write_text(yaml.safe_dump(_base(tiny_model, tiny_task_files, accelerate={"num_processes": 2})))
    file, catalog = load_experiment(config)
    exp = Experiment(file.cfg, catalog, RunDir(tmp_path / "out"))
    job = next(j for j in exp.plan().jobs if j.kind == "intermediate")
    stalled, other = Queue(exp.run, ttl=0.01), Queue(exp.run)
    stalled.host = "another-host"  # only the TTL frees its lease
    assert stalled.claim(job.id)
    time.sleep(0.05)
    assert other.claim(job.id)  # taken over before the stalled worker's job writes its result
    run_claimed(job, exp, stalled)
    assert not exp.run.is_done(job.id) and exp.run.failure(job.id) is None
    (last,) = [e for e in Queue(exp.run).log() if e["event"] not in ("start", "expired")]
    assert last["event"] == "superseded" and last["owner"] == stalled.owner and "taken over" in last["detail"]
