"""A job's backbone as its spec holds it: weight dtype, LoRA adapters (peft), gradient checkpointing, and the
hand-off of an intermediate job's encoder to its target and retrieval jobs.

With ``lora``, only the adapters (and the heads, outside the backbone) train. An intermediate job hands on
either its adapters folded into the weights (``merged``: a standard HF directory, read like any model) or the
adapters alone (``stacked``: peft's adapter directory; its target loads the base model with them, frozen, and
trains new adapters over them).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from xstilts.models.backbone import load_backbone, save_backbone

TRAINED = "default"  # the adapters a job trains
UPSTREAM = "intermediate"  # a stacked intermediate job's adapters, under the new ones
# module names of the attention projections: BERT/XLM-R, Llama/Mistral/Qwen, T5/mT5, DeBERTa
ATTENTION = r".*\.(query|key|value|q_proj|k_proj|v_proj|o_proj|q|k|v|o|query_proj|key_proj|value_proj)$"


def is_adapter_dir(path: Path) -> bool:
    return (Path(path) / "adapter_config.json").is_file()


def lora_config(lora: Mapping[str, Any]) -> Any:
    """peft's LoraConfig for the ``backbone.lora`` settings."""
    from peft import LoraConfig

    targets = lora["targets"]
    modules = ATTENTION if targets == "attention" else targets if targets == "all-linear" else list(targets)
    return LoraConfig(r=lora["rank"], lora_alpha=lora["alpha"], lora_dropout=lora["dropout"], target_modules=modules)


def job_backbone(
    model: str,
    settings: Mapping[str, Any],
    upstream: Path | None,
    trains: bool,
    checkpointing: bool = False,
    seed: int = 0,
) -> tuple[nn.Module, Any]:
    """(backbone, tokenizer) a job starts from: ``model``, or the ``upstream`` intermediate job's encoder, in
    ``settings`` (``BackboneConfig.spec()``); with LoRA and ``trains``, new trainable adapters on it, drawn from
    ``seed`` (so a job's adapters start alike in every process and every run)."""
    lora = settings.get("lora")
    stacked = upstream is not None and is_adapter_dir(upstream)
    start = model if upstream is None or stacked else str(upstream)
    quantize = lora["quantize"] if lora else "none"
    backbone, tokenizer = load_backbone(start, settings.get("dtype", "float32"), quantize)
    if trains and checkpointing:
        backbone.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    if quantize != "none" and trains:
        from peft import prepare_model_for_kbit_training

        backbone = prepare_model_for_kbit_training(backbone, use_gradient_checkpointing=checkpointing)
    if stacked:
        from peft import PeftModel

        backbone = PeftModel.from_pretrained(backbone, upstream, adapter_name=UPSTREAM)
    if lora and trains:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            backbone = _add_adapters(backbone, lora)
    return backbone, tokenizer


def _add_adapters(backbone: nn.Module, lora: Mapping[str, Any]) -> nn.Module:
    """Trainable adapters named ``TRAINED``; everything else, stacked upstream adapters included, frozen."""
    from peft import PeftModel, get_peft_model

    if not isinstance(backbone, PeftModel):
        return get_peft_model(backbone, lora_config(lora), adapter_name=TRAINED)
    backbone.add_adapter(TRAINED, lora_config(lora))
    backbone.base_model.set_adapter([UPSTREAM, TRAINED])  # both apply; set_adapter makes both trainable
    for name, p in backbone.named_parameters():
        p.requires_grad_(f".{TRAINED}." in name)
    return backbone


def save_handoff(backbone: nn.Module, tokenizer: Any, directory: Path, settings: Mapping[str, Any]) -> None:
    """What an intermediate job hands on, into ``directory`` (callers make it atomic): the encoder; with LoRA,
    its adapters merged into it or alone (``lora.handoff``)."""
    lora = settings.get("lora")
    if lora and lora["handoff"] == "stacked":
        backbone.save_pretrained(directory, selected_adapters=[TRAINED])
        tokenizer.save_pretrained(directory)
        return
    save_backbone(backbone.merge_and_unload() if lora else backbone, tokenizer, directory)
