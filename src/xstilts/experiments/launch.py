"""Training jobs on several processes: ``accelerate launch`` (DDP or FSDP) of this module, one process per GPU.

The runner pickles the experiment, the job and the worker's lease fence to ``OUT/jobs/<id>/launch.pkl``; every
launched process loads it and runs the job there (``experiment.run_here(job, fence=fence)``). Without CUDA the
processes talk over gloo on the CPU, which is how the tests exercise this path.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

from xstilts.config.schema import AccelerateConfig
from xstilts.experiments.queue import LeaseLost


def command(acc: AccelerateConfig, handoff: Path, blocks: list[str] | None = None) -> list[str]:
    """The ``accelerate launch`` command line for an ``accelerate:`` block; FSDP wraps each of the model's
    ``blocks`` (class names: decoder or encoder layers) when given, else every module above 1M parameters."""
    cmd = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--num_processes",
        str(acc.num_processes),
        "--num_machines",
        "1",
        "--mixed_precision",
        acc.mixed_precision,
        "--dynamo_backend",
        "no",
        "--main_process_port",
        "0",
    ]
    if acc.strategy == "fsdp":
        cmd += [
            "--use_fsdp",
            "--fsdp_version",
            "2",
            *(
                [
                    "--fsdp_auto_wrap_policy",
                    "TRANSFORMER_BASED_WRAP",
                    "--fsdp_transformer_layer_cls_to_wrap",
                    ",".join(blocks),
                ]
                if blocks
                else ["--fsdp_auto_wrap_policy", "SIZE_BASED_WRAP", "--fsdp_min_num_params", "1000000"]
            ),
            "--fsdp_state_dict_type",
            "FULL_STATE_DICT",
        ]
    else:
        cmd += ["--multi_gpu"]
    return [*cmd, "-m", "xstilts.experiments.launch", str(handoff)]


def run_launched(
    job: object, experiment: object, acc: AccelerateConfig, handoff: Path, fence: Callable = nullcontext
) -> None:
    """Run ``job`` of ``experiment`` through ``accelerate launch``, its result written inside ``fence()``; a failure
    raises with the launched processes' last error line (:class:`LeaseLost` when the fence refused the result)."""
    from xstilts.models.backbone import block_classes

    blocks = block_classes(job.spec.model.model) if acc.strategy == "fsdp" and acc.fsdp_wrap == "layer" else None
    handoff.parent.mkdir(parents=True, exist_ok=True)
    handoff.write_bytes(pickle.dumps((experiment, job, fence)))
    try:
        proc = subprocess.run(
            command(acc, handoff, blocks), check=False, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
    finally:
        handoff.unlink(missing_ok=True)
    if proc.returncode:
        if lost := [line for line in proc.stderr.splitlines() if f"{LeaseLost.__name__}: " in line]:
            raise LeaseLost(lost[-1].split(f"{LeaseLost.__name__}: ", 1)[1].strip())
        lines = [line for line in proc.stderr.splitlines() if "Error" in line] or proc.stderr.splitlines() or [""]
        raise RuntimeError(f"accelerate launch exited with {proc.returncode}: {lines[-1].strip()}")


def main() -> None:
    experiment, job, fence = pickle.loads(Path(sys.argv[1]).read_bytes())
    import torch

    if not torch.cuda.is_available():
        os.environ["ACCELERATE_USE_CPU"] = "true"
    experiment.run_here(job, fence=fence)


if __name__ == "__main__":
    main()
