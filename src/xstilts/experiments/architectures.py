"""Model architectures from their config.json or a table of known hub ids, without loading a model: the sizes
parameter counts, FLOP and memory estimates depend on (``xstilts plan`` reads JSON only, never torch)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

# linear layer names per block: attention (q, k, v, o), gated FFN, plain FFN; as peft's target_modules match them
_NAMES = {
    "decoder": (
        ("q_proj", "k_proj", "v_proj", "o_proj"),
        ("gate_proj", "up_proj", "down_proj"),
        ("up_proj", "down_proj"),
    ),
    "bert": (("query", "key", "value", "dense"), ("dense", "dense", "dense"), ("dense", "dense")),
    "t5": (("q", "k", "v", "o"), ("wi_0", "wi_1", "wo"), ("wi", "wo")),
}


@dataclass(frozen=True)
class Architecture:
    """The sizes memory depends on. ``gated``: three FFN matrices (SwiGLU, gated GELU) rather than two; ``bias``:
    BERT-style linear biases and LayerNorms (else RMSNorms, no biases: T5, Llama); ``positions``: learned position
    and token-type embedding rows. An AutoModel has no LM head, so tied or untied output embeddings do not count."""

    kind: Literal["encoder", "decoder"]
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    kv_heads: int | None = None  # grouped-query attention; None: as many as heads
    gated: bool = False
    bias: bool = True
    positions: int = 0

    @property
    def linears(self) -> list[tuple[str, int, int]]:
        """(module name, inputs, outputs) of each linear layer of a block: q, k, v, o, then the FFN's."""
        h, f = self.hidden, self.ffn
        kv = h * (self.kv_heads or self.heads) // self.heads
        attention, gated, plain = _NAMES["decoder" if self.kind == "decoder" else "bert" if self.bias else "t5"]
        ffn = zip(gated, [(h, f), (h, f), (f, h)]) if self.gated else zip(plain, [(h, f), (f, h)])
        return [(name, i, o) for name, (i, o) in [*zip(attention, [(h, h), (h, kv), (h, kv), (h, h)]), *ffn]]

    @property
    def embedding_params(self) -> int:
        return (self.vocab + self.positions) * self.hidden + (2 * self.hidden if self.bias else 0)

    @property
    def block_params(self) -> int:
        biases = sum(o for _, _, o in self.linears) if self.bias else 0
        return sum(i * o for _, i, o in self.linears) + biases + (4 if self.bias else 2) * self.hidden

    @property
    def params(self) -> int:
        """Embeddings (with a LayerNorm in BERT-style encoders), blocks, and a final norm (T5, decoders)."""
        return self.embedding_params + self.layers * self.block_params + (0 if self.bias else self.hidden)


def _encoder(hidden: int, layers: int, heads: int, ffn: int, vocab: int, positions: int) -> Architecture:
    return Architecture("encoder", hidden, layers, heads, ffn, vocab, positions=positions)


def _mt5(hidden: int, layers: int, heads: int, ffn: int) -> Architecture:  # the encoder; gated-GELU FFN
    return Architecture("encoder", hidden, layers, heads, ffn, 250_112, gated=True, bias=False)


def _decoder(hidden: int, layers: int, heads: int, kv_heads: int, ffn: int, vocab: int) -> Architecture:
    return Architecture("decoder", hidden, layers, heads, ffn, vocab, kv_heads, gated=True, bias=False)


ME5_SMALL = _encoder(384, 12, 12, 1536, 250_037, 512 + 2)  # multilingual-e5-small
KNOWN: list[tuple[str, Architecture]] = [  # (regex on the lower-cased ref, architecture); the first match wins
    (r"xlm-roberta-base$", _encoder(768, 12, 12, 3072, 250_002, 514 + 1)),
    (r"xlm-roberta-large$", _encoder(1024, 24, 16, 4096, 250_002, 514 + 1)),
    (r"xlm-roberta-xl$", _encoder(2560, 36, 32, 10240, 250_880, 514 + 1)),
    (r"xlm-roberta-xxl$", _encoder(4096, 48, 32, 16384, 250_880, 514 + 1)),
    (r"bert-base-multilingual-cased$", _encoder(768, 12, 12, 3072, 119_547, 512 + 2)),
    (r"bert-base-multilingual-uncased$", _encoder(768, 12, 12, 3072, 105_879, 512 + 2)),
    (r"mdeberta-v3-base$", _encoder(768, 12, 12, 3072, 251_000, 2 * 256)),  # relative position embeddings
    (r"multilingual-e5-small$", ME5_SMALL),
    (r"mt5-base$", _mt5(768, 12, 12, 2048)),
    (r"mt5-large$", _mt5(1024, 24, 16, 2816)),
    (r"mt5-xl$", _mt5(2048, 24, 32, 5120)),
    (r"llama-2-7b", _decoder(4096, 32, 32, 32, 11008, 32_000)),
    (r"llama-2-13b", _decoder(5120, 40, 40, 40, 13824, 32_000)),
    (r"llama-2-70b", _decoder(8192, 80, 64, 8, 28672, 32_000)),
    (r"llama-3(\.\d)?-8b", _decoder(4096, 32, 32, 8, 14336, 128_256)),
    (r"llama-3(\.\d)?-70b", _decoder(8192, 80, 64, 8, 28672, 128_256)),
    (r"mistral-7b-(instruct-)?v0\.3", _decoder(4096, 32, 32, 8, 14336, 32_768)),
    (r"mistral-7b", _decoder(4096, 32, 32, 8, 14336, 32_000)),  # v0.1, v0.2
    (r"qwen2\.5-7b", _decoder(3584, 28, 28, 4, 18944, 152_064)),
    (r"qwen2\.5-72b", _decoder(8192, 80, 64, 8, 29568, 152_064)),
]


def from_config(c: dict[str, Any]) -> Architecture:
    """The architecture an HF config.json describes: BERT-style and T5-style encoders, Llama-style decoders."""
    t5 = "d_model" in c
    decoder = any("CausalLM" in a for a in c.get("architectures") or []) or c.get("model_type") in ("llama", "mistral")
    bias = not (t5 or decoder)
    heads = c["num_heads" if t5 else "num_attention_heads"]
    hidden = c["d_model" if t5 else "hidden_size"]
    rows = c.get("max_position_embeddings", 0) + c.get("type_vocab_size", 0)
    return Architecture(
        kind="decoder" if decoder else "encoder",
        hidden=hidden,
        layers=c["num_layers" if t5 else "num_hidden_layers"],
        heads=heads,
        ffn=c["d_ff"] if t5 else c.get("intermediate_size", 4 * hidden),
        vocab=c["vocab_size"],
        kv_heads=c.get("num_key_value_heads") or heads,
        gated=decoder or str(c.get("feed_forward_proj", "")).startswith("gated"),
        bias=bias,
        positions=rows if bias and c.get("position_biased_input", True) else 0,
    )


def architecture(ref: str) -> Architecture | None:
    """The architecture behind a model reference: ``me5-small[@L<n>]``, a local HF directory (its config.json)
    or a known hub id; None when unknown."""
    if m := re.match(r"^me5-small(?:@L(\d+))?$", ref):
        return replace(ME5_SMALL, layers=int(m.group(1) or ME5_SMALL.layers))
    config = Path(ref).expanduser() / "config.json"
    if config.is_file():
        try:
            return from_config(json.loads(config.read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError):
            return None
    name = ref.lower().rstrip("/")
    return next((arch for pattern, arch in KNOWN if re.search(pattern, name)), None)
