"""The hardware meters: the CPU peak probe and its cache, datasheet peaks, non-embedding parameters, the peak
memory sampler, the encoder token counter and the meters built from them."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import torch
from transformers import BertConfig, BertForMaskedLM, BertModel

from xstilts.evaluate import hardware

TINY = BertConfig(
    vocab_size=100,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=64,
    max_position_embeddings=64,
)


def test_cpu_probe_is_measured_once_then_read_from_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XSTILTS_CACHE", str(tmp_path))
    flops = hardware.cpu_peak_flops()
    assert flops > 0 and np.isfinite(flops)
    path = tmp_path / "hardware" / "peak-flops.json"
    assert hardware.probe_path() == path
    entry = json.loads(path.read_text())[hardware.probe_key()]
    assert entry["flops"] == flops and entry["size"] == hardware.PROBE_SIZE
    # the key names what the figure depends on
    assert hardware.cpu_model() in hardware.probe_key() and torch.__version__ in hardware.probe_key()
    assert f"{torch.get_num_threads()} threads" in hardware.probe_key()
    # the second call reads the file: a figure written there comes back, not a new measurement
    path.write_text(json.dumps({hardware.probe_key(): {**entry, "flops": 123.0e9}}))
    start = time.perf_counter()
    assert hardware.cpu_peak_flops() == 123.0e9
    assert time.perf_counter() - start < 0.1
    assert hardware.peak_flops("cpu") == (123.0e9, "matmul probe")


def test_a_cache_entry_of_other_threads_is_not_reused(tmp_path, monkeypatch):
    monkeypatch.setenv("XSTILTS_CACHE", str(tmp_path))
    path = hardware.probe_path()
    path.parent.mkdir(parents=True)
    other = hardware.probe_key().replace(f"| {torch.get_num_threads()} threads", "| 999 threads")
    path.write_text(json.dumps({other: {"flops": 1.0}}))
    assert hardware.cpu_peak_flops() > 1.0
    assert set(json.loads(path.read_text())) == {other, hardware.probe_key()}  # both kept


def test_datasheet_peaks_by_device_name():
    assert hardware.datasheet_tflops("NVIDIA H200") == 989.0
    assert hardware.datasheet_tflops("NVIDIA H100 80GB HBM3") == 989.0
    assert hardware.datasheet_tflops("NVIDIA A100-SXM4-80GB") == 312.0
    assert hardware.datasheet_tflops("NVIDIA L4") == 121.0
    assert hardware.datasheet_tflops("Tesla V100-SXM2-16GB") == 125.0
    assert hardware.datasheet_tflops("NVIDIA L40S") is None  # not an L4
    assert hardware.datasheet_tflops("NVIDIA GeForce RTX 4090") is None


def test_non_embedding_params_leave_out_the_embedding_tables():
    model = BertModel(TINY, add_pooling_layer=False)
    emb = model.embeddings
    tables = sum(m.weight.numel() for m in (emb.word_embeddings, emb.position_embeddings, emb.token_type_embeddings))
    total = sum(p.numel() for p in model.parameters())
    assert hardware.non_embedding_params(model) == total - tables
    assert tables == (100 + 64 + 2) * 32
    # a decoder tied to the word embeddings is the table, counted once and left out with it
    mlm = BertForMaskedLM(TINY)
    assert mlm.cls.predictions.decoder.weight is mlm.bert.embeddings.word_embeddings.weight
    head = sum(p.numel() for n, p in mlm.cls.named_parameters() if "decoder.weight" not in n)
    assert hardware.non_embedding_params(mlm) == total - tables + head


def test_peak_memory_sampler_sees_a_buffer_allocated_inside_the_window():
    before = hardware.resident_mb()
    assert before is not None and before > 0
    with hardware.PeakMemory("cpu", interval=0.01) as memory:
        buffer = np.ones(256 * 2**20 // 8)  # 256 MB, every page written
        time.sleep(0.1)
        del buffer
    assert memory.peak >= before + 0.9 * 256
    assert memory.meters()["peak_memory_source"] == "rss sampled from /proc/self/statm"
    assert not memory._thread.is_alive()


def test_peak_memory_without_proc_falls_back_to_ru_maxrss(monkeypatch, tmp_path):
    monkeypatch.setattr(hardware, "_STATM", tmp_path / "no-such-file")
    with hardware.PeakMemory("cpu") as memory:
        pass
    assert memory.peak > 0 and memory.source.startswith("ru_maxrss")


def test_token_meter_counts_the_non_padding_tokens_fed_to_the_encoder():
    model = BertModel(TINY, add_pooling_layer=False).eval()
    ids = torch.tensor([[5, 6, 7, 0, 0], [5, 6, 7, 8, 9]])
    mask = (ids != 0).long()
    with torch.inference_mode():
        with hardware.TokenMeter(model) as meter:
            model(input_ids=ids, attention_mask=mask)
            model(input_ids=ids[:1, :3])  # no mask: every id counts
        model(input_ids=ids, attention_mask=mask)  # after the window: not counted
    assert meter.tokens == 8 + 3 and meter.seconds > 0


def test_meters_from_the_measured_figures():
    model = BertModel(TINY, add_pooling_layer=False)
    with hardware.TokenMeter(model) as evaluation, torch.inference_mode():
        model(input_ids=torch.tensor([[5, 6, 7, 8]]), attention_mask=torch.ones(1, 4, dtype=torch.long))
    train = {"train_seconds": 2.0, "tokens_seen": 1000, "examples_seen": {"a": 30, "b": 10}, "processes": 1}
    speed = {"latency_ms_p50": 1.0, "latency_ms_p95": 2.0, "throughput_examples_per_second": 50.0, "threads": 4}
    n = hardware.non_embedding_params(model)
    meters = hardware.meters(n, (1e12, "datasheet"), evaluation, speed, train)
    assert meters["train_tokens_per_second"] == 500 and meters["train_examples_per_second"] == 20
    assert meters["train_mfu"] == pytest.approx(6 * n * 500 / 1e12, rel=1e-3)
    assert meters["eval_tokens"] == 4
    assert meters["eval_mfu"] == pytest.approx(2 * n * 4 / evaluation.seconds / 1e12, rel=1e-3)
    assert "threads" not in meters and list(meters) == [k for k in hardware.METER_KEYS if k in meters]
    # without a known peak there is no MFU; without a training loop no training meters
    bare = hardware.meters(n, (None, "datasheet"), evaluation, speed)
    assert not {"train_mfu", "eval_mfu", "train_tokens_per_second", "peak_flops"} & set(bare)
