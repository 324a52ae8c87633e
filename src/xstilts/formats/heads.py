"""The heads' torch modules and their builders.

Format modules stay free of torch (so that planning, status and reports never load it): their methods that
compute import this module, ``xstilts.formats.pooling`` and torch in their bodies.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from xstilts.errors import UserError

if TYPE_CHECKING:
    from transformers import PretrainedConfig


def head_dropout(config: PretrainedConfig) -> float:
    """A head's dropout, as in transformers' task models: ``classifier_dropout`` if set, else the backbone's
    (``hidden_dropout_prob``; T5's ``dropout_rate``), else none (decoders' classification heads have none)."""
    for name in ("classifier_dropout", "hidden_dropout_prob", "dropout_rate"):
        if (given := getattr(config, name, None)) is not None:
            return given
    return 0.0


def linear_head(config: PretrainedConfig, num_outputs: int) -> nn.Module:
    """dropout -> linear, on a pooled vector or on each token."""
    return nn.Sequential(nn.Dropout(head_dropout(config)), nn.Linear(config.hidden_size, num_outputs))


def pooled_head(config: PretrainedConfig, num_outputs: int, kind: str) -> nn.Module:
    """The head of a pooled vector: dropout -> linear, or the RoBERTa/jiant dense-tanh-linear head ("mlp")."""
    if kind == "mlp":
        return ClassificationHead(config.hidden_size, num_outputs, head_dropout(config))
    return linear_head(config, num_outputs)


class NormalisedInput(nn.Module):
    """Each vector L2-normalised along its last dimension (a pooled vector, or each token's state) and scaled by
    sqrt(size), so its squared norm is that of a standardised vector in expectation: the L2 grid of the probe
    means the same for both inputs."""

    def __init__(self, size: int):
        super().__init__()
        self.scale = size**0.5

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(x, dim=-1) * self.scale


def normalised_head(head: nn.Module, size: int) -> nn.Module:
    """``head`` reading the normalised input (:class:`NormalisedInput`) of vectors of ``size``."""
    return nn.Sequential(NormalisedInput(size), head)


class ClassificationHead(nn.Module):
    """dense -> tanh -> dropout -> linear on a pooled vector (the RoBERTa/XLM-R classification head)."""

    def __init__(self, hidden_size: int, num_outputs: int, dropout: float):
        super().__init__()
        self.dense = nn.Linear(hidden_size, hidden_size)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden_size, num_outputs)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.out(self.dropout(torch.tanh(self.dense(self.dropout(pooled)))))


class MLMHead(nn.Module):
    """dense -> GELU -> LayerNorm, then logits against the backbone's input embeddings (tied by construction:
    the head holds no decoder weight) plus a vocabulary bias that ``attach`` sizes to the embedding matrix."""

    def __init__(self, hidden_size: int):
        super().__init__()
        self.dense = nn.Linear(hidden_size, hidden_size)
        self.layer_norm = nn.LayerNorm(hidden_size)
        self.register_parameter("bias", None)

    def attach(self, backbone: nn.Module) -> None:
        """Create the decoder bias, one per row of ``backbone``'s input embeddings (call before training)."""
        weight = backbone.get_input_embeddings().weight
        if weight.shape[1] != self.dense.out_features:
            raise UserError(
                f"masked LM: embedding size {weight.shape[1]} differs from hidden size "
                f"{self.dense.out_features}; the tied decoder needs them equal"
            )
        self.bias = nn.Parameter(torch.zeros(weight.shape[0], device=weight.device, dtype=weight.dtype))

    def forward(self, hidden: torch.Tensor, embeddings: torch.Tensor) -> torch.Tensor:
        return F.linear(self.layer_norm(F.gelu(self.dense(hidden))), embeddings, self.bias)
