"""Per-GPU memory plan: parameter counts from architectures, the formula against hand-computed bytes, and
``xstilts plan`` printing per-job memory and warnings for a decoder LLM."""

import json

import pytest
import yaml
from typer.testing import CliRunner

from xstilts.cli import app
from xstilts.config.schema import (
    AccelerateConfig,
    BackboneConfig,
    EvalConfig,
    ExperimentConfig,
    LoraConfig,
    TrainConfig,
)
from xstilts.experiments.memory import GIB, architecture, format_memory, job_memory, memory_plan
from xstilts.experiments.specs import Job, ModelSpec, TargetSpec
from xstilts.tasks.catalog import TaskCatalog

LLAMA_7B = "meta-llama/Llama-2-7b-hf"


def _job(model: str = LLAMA_7B) -> Job:
    """A full-recipe target job: 8 examples per update, 512 tokens; evaluation 8 x 512 too."""
    train = TrainConfig(recipe="full", batch_size=8, max_length=512)
    spec = TargetSpec(
        ModelSpec(model, f"hub:{model}", "last", None),
        (),
        0,
        None,
        "xnli",
        "-",
        EvalConfig(batch_size=8, max_length=512),
        train,
    )
    return Job(spec)


def test_parameter_counts_from_architectures():
    # Llama-2-7B AutoModel (no LM head): 32000·4096 embeddings + 32 blocks of (4·4096² attention + 3·4096·11008
    # FFN + 2·4096 RMSNorm) + a final 4096 RMSNorm = 6,607,343,616
    assert architecture(LLAMA_7B).params == 6_607_343_616
    assert architecture(LLAMA_7B).params == pytest.approx(6.61e9, rel=0.01)
    assert architecture("FacebookAI/xlm-roberta-base").params == pytest.approx(278e6, rel=0.01)
    assert architecture("me5-small@L6").layers == 6 and architecture("some/unknown-model") is None


def test_architecture_from_a_local_config_json(tmp_path):
    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": 4096,
        "intermediate_size": 11008,
        "num_attention_heads": 32,
        "num_hidden_layers": 32,
        "num_key_value_heads": 32,
        "vocab_size": 32000,
        "max_position_embeddings": 4096,
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert architecture(str(tmp_path)) == architecture(LLAMA_7B)


def test_lora_with_checkpointing_hand_computed():
    """Llama-2-7B, LoRA rank 16 on every linear layer, bfloat16 weights, 8 x 512 tokens on one GPU, checkpointing."""
    backbone = BackboneConfig(dtype="bfloat16", gradient_checkpointing=True, lora=LoraConfig(rank=16))
    est = job_memory(_job(), architecture(LLAMA_7B), backbone, AccelerateConfig())
    params = 6_607_343_616
    # adapters: 16·(4·(4096 + 4096) + 3·(4096 + 11008)) = 16·78,080 = 1,249,280 per block, x 32 blocks
    adapters = 39_976_960
    assert est.weights == 2 * params + 4 * adapters == 13_374_595_072  # bf16 backbone + fp32 adapters
    assert est.gradients == 4 * adapters == 159_907_840
    assert est.optimizer == 8 * adapters == 319_815_680
    # one block (s = 512, b = 8, h = 4096, a = 32): 34·s·b·h + 5·a·s²·b = 570,425,344 + 335,544,320 = 905,969,664;
    # checkpointing keeps 32 block inputs of 2·s·b·h = 33,554,432 bytes (1,073,741,824) plus one whole block;
    # that is above the evaluation's one block (905,969,664)
    assert est.activations == 1_073_741_824 + 905_969_664 == 1_979_711_488
    assert est.total == 13_374_595_072 + 159_907_840 + 319_815_680 + 1_979_711_488 + GIB == 16_907_771_904
    assert est.largest == "weights"


def test_full_fine_tuning_with_fsdp_over_8_hand_computed():
    """The same job fully fine-tuned with FSDP over 8 GPUs: one example per GPU."""
    backbone = BackboneConfig(dtype="bfloat16", gradient_checkpointing=True)
    est = job_memory(_job(), architecture(LLAMA_7B), backbone, AccelerateConfig(num_processes=8, strategy="fsdp"))
    params = 6_607_343_616
    assert est.weights == est.gradients == 2 * params // 8 == 1_651_835_904  # bf16 weights and gradients, sharded
    assert est.optimizer == 8 * params // 8 == 6_607_343_616
    # training, b = 1: 32 block inputs of 2·512·4096 (134,217,728) + one block of 34·512·4096 + 5·32·512²
    # (113,246,208) = 247,463,936 bytes, less than the evaluation's one block at 8 x 512 (905,969,664): the larger
    assert est.activations == 905_969_664
    assert est.total == 2 * 1_651_835_904 + 6_607_343_616 + 905_969_664 + GIB == 11_890_726_912
    assert est.largest == "optimizer"


def test_unknown_architecture_is_one_line_per_model():
    cfg = ExperimentConfig(model="some/unknown-model", targets=[{"task": "xnli"}])
    jobs = [_job("some/unknown-model")]
    plan = memory_plan(jobs, TaskCatalog.builtin(), cfg, "a100")
    assert plan["jobs"][jobs[0].id] is None and plan["unknown"] == ["some/unknown-model"]
    assert "memory of some/unknown-model: architecture unknown" in format_memory(plan, jobs)


@pytest.fixture
def llama_70b(tmp_path):
    """An experiment of Llama-2-70B with QLoRA (4bit), bfloat16 and gradient checkpointing."""
    config = {
        "name": "llama-70b",
        "model": "meta-llama/Llama-2-70b-hf",
        "head_pooling": "last",
        "backbone": {"dtype": "bfloat16", "gradient_checkpointing": True, "lora": {"rank": 16, "quantize": "4bit"}},
        "targets": [
            {
                "task": "xnli",
                "train": {"recipe": "full", "batch_size": 8, "max_length": 256},
                "eval": {"batch_size": 32, "max_length": 256},
            }
        ],
    }
    path = tmp_path / "llama.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _plan(config, *args):
    result = CliRunner().invoke(app, ["plan", str(config), "--out", str(config.parent / "out"), *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_plan_warns_when_a_70b_job_does_not_fit(llama_70b):
    out = _plan(llama_70b, "--accelerator", "l4")
    jobs = [line for line in out.splitlines() if " target " in line]
    assert len(jobs) == 3 and all("GiB (weights)" in line for line in jobs)  # the fine-tuned job and the probes
    warnings = [line for line in out.splitlines() if line.startswith("warning: job ")]
    assert len(warnings) == 3 and all("l4 has 24 GiB" in w for w in warnings)
    assert "0/3 jobs fit" in out and "l4-h" in out  # the FLOP estimate is still there


def test_plan_on_h200_fits_and_json_gives_the_parts(llama_70b):
    out = _plan(llama_70b, "--accelerator", "h200")
    assert "3/3 jobs fit" in out and "warning:" not in out
    planned = json.loads(_plan(llama_70b, "--accelerator", "h200", "--format", "json"))
    for job in planned["jobs"]:
        mem = job["memory"]
        assert mem["fits"] and 30 < mem["total_gib"] < 50  # 4-bit weights: about 32 GiB
        parts = ("weights", "gradients", "optimizer", "activations", "context")
        assert sum(mem[p] for p in parts) / GIB == pytest.approx(mem["total_gib"], abs=0.01)
    assert planned["memory"]["capacity_gib"] == 141
