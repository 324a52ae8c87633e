"""The sparse embedding gradient gives the optimizer the same dense gradient as plain backward."""

from __future__ import annotations

import torch

from xstilts.models.backbone import load_backbone
from xstilts.train.loop import SparseEmbeddingGrad


def _grad(backbone, ids: torch.Tensor) -> torch.Tensor:
    backbone.zero_grad(set_to_none=True)
    backbone(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state.pow(2).mean().backward()
    return backbone.get_input_embeddings().weight.grad


def test_densified_gradient_equals_the_dense_one_step_after_step(tiny_model):
    backbone, _ = load_backbone(tiny_model)
    backbone.eval()  # no dropout: both passes compute the same function
    table = backbone.get_input_embeddings()
    batches = [torch.tensor([[1, 5, 6, 5, 2]]), torch.tensor([[1, 9, 10, 11, 2], [1, 12, 12, 3, 2]])]
    dense = [_grad(backbone, ids).clone() for ids in batches]
    sparse = SparseEmbeddingGrad.attach(backbone, 1)
    assert sparse is not None and table.sparse
    for ids, want in zip(batches, dense):
        assert _grad(backbone, ids).is_sparse
        sparse.densify()
        got = table.weight.grad
        assert not got.is_sparse and got.data_ptr() == sparse.buffer.data_ptr()  # one buffer, reused
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-9)
        untouched = torch.ones(len(got), dtype=torch.bool)
        untouched[ids.flatten()] = False
        assert not got[untouched].any()  # rows of the previous batch were zeroed again
    sparse.close(table)
    assert not table.sparse and not _grad(backbone, batches[0]).is_sparse


def test_not_attached_to_a_frozen_table(tiny_model):
    backbone, _ = load_backbone(tiny_model)
    backbone.get_input_embeddings().weight.requires_grad_(False)
    assert SparseEmbeddingGrad.attach(backbone, 1) is None
