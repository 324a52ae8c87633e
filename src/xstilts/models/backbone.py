"""Loading and saving a backbone (any HF encoder) with its tokenizer; its blocks, parameter depths and freezing."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from xstilts.errors import UserError
from xstilts.models.registry import model_error, resolve_model


def load_backbone(ref: str, dtype: str = "float32", quantize: str = "none") -> tuple[nn.Module, Any]:
    """(model, tokenizer) for a model reference or a saved directory: the encoder of an encoder, of an
    encoder-decoder (mT5) or a decoder, its hidden states read by our heads; weights in ``dtype``, or 4-bit
    NF4 (QLoRA) with ``quantize="4bit"``. A tokenizer without a pad token (most decoders) pads with EOS."""
    from transformers import AutoConfig, AutoTokenizer

    path = resolve_model(ref)
    kwargs: dict[str, Any] = {"dtype": torch.bfloat16} if dtype == "bfloat16" else {}
    if quantize == "4bit":
        kwargs["quantization_config"] = _four_bit()
    try:
        config = AutoConfig.from_pretrained(path)
        tokenizer = AutoTokenizer.from_pretrained(path)
        if config.model_type in _POOLER_MODELS:
            kwargs["add_pooling_layer"] = False
        backbone = _model_class(config).from_pretrained(path, **kwargs)
    except (OSError, ValueError) as e:
        raise model_error(ref, e) from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    return backbone, tokenizer


_POOLER_MODELS = {"bert", "roberta", "xlm-roberta", "camembert"}  # an unused pooler we leave out


def _model_class(config: Any) -> Any:
    """AutoModel's class for ``config``; for an encoder-decoder its encoder alone (``MT5EncoderModel``)."""
    import transformers
    from transformers import AutoModel

    if not getattr(config, "is_encoder_decoder", False):
        return AutoModel
    name = AutoModel._model_mapping[type(config)].__name__.replace("Model", "EncoderModel")
    if not hasattr(transformers, name):
        raise ValueError(f"{config.model_type} is an encoder-decoder without an encoder-only class")
    return getattr(transformers, name)


def block_classes(ref: str) -> list[str]:
    """Class names of a model's transformer blocks (transformers' ``_no_split_modules``): FSDP's wrap units."""
    from transformers import AutoConfig, AutoModel

    config = AutoConfig.from_pretrained(resolve_model(ref))
    cls = _model_class(config)
    cls = AutoModel._model_mapping[type(config)] if cls is AutoModel else cls
    return list(cls._no_split_modules or [])


def _four_bit() -> Any:
    import importlib.util

    if importlib.util.find_spec("bitsandbytes") is None or not torch.cuda.is_available():
        raise UserError("backbone.lora.quantize: 4bit (QLoRA) needs the bitsandbytes package and a CUDA GPU")
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16,
    )


def local_device() -> torch.device:
    """This process's GPU (``LOCAL_RANK`` under ``accelerate launch``), else the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")


def blocks(backbone: nn.Module) -> nn.ModuleList:
    """The backbone's transformer blocks, bottom first (the module list as long as its layer count)."""
    depth = backbone.config.num_hidden_layers
    found = next((m for m in backbone.modules() if isinstance(m, nn.ModuleList) and len(m) == depth), None)
    if found is None:
        raise UserError(f"{type(backbone).__name__}: cannot find its {depth} transformer blocks")
    return found


def parameter_depths(backbone: nn.Module) -> dict[str, int]:
    """Each backbone parameter's depth: 0 for the embeddings, i + 1 for block i, L + 1 above the blocks."""
    depth = {id(p): i + 1 for i, block in enumerate(blocks(backbone)) for p in block.parameters()}
    embedded = {id(p) for p in backbone.get_input_embeddings().parameters()}
    embedded |= {id(p) for p in getattr(backbone, "embeddings", nn.Module()).parameters()}
    top = backbone.config.num_hidden_layers + 1
    return {name: 0 if id(p) in embedded else depth.get(id(p), top) for name, p in backbone.named_parameters()}


def freeze(backbone: nn.Module, parts: list[str]) -> list[str]:
    """Stop gradients to ``parts`` ("embeddings", "layers:N" = the first N blocks); returns the frozen names."""
    depths = parameter_depths(backbone)
    for part in parts:
        if part.startswith("layers:") and int(part.split(":")[1]) > backbone.config.num_hidden_layers:
            raise UserError(f"freeze: {part!r}, but the model has {backbone.config.num_hidden_layers} layers")
    frozen = []
    for name, p in backbone.named_parameters():
        for part in parts:
            if (part == "embeddings" and depths[name] == 0) or (
                part.startswith("layers:") and 1 <= depths[name] <= int(part.split(":")[1])
            ):
                p.requires_grad_(False)
                frozen.append(name)
                break
    return frozen


def save_backbone(backbone: nn.Module, tokenizer: Any, directory: Path) -> None:
    """Write backbone weights and tokenizer as a standard HF directory (callers make it atomic)."""
    backbone.save_pretrained(directory, safe_serialization=True)
    tokenizer.save_pretrained(directory)
