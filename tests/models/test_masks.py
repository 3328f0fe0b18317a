"""Tests for asrkit/models/masks.py: packed mask files, checks, and running a model with a language's mask."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from asrkit.errors import ConfigError, FormatError
from asrkit.models.masks import (
    check_mask_fits,
    language_pathway,
    load_mask,
    load_masks,
    pack_mask,
    save_mask,
    save_masks,
    unpack_mask,
)


def test_packed_round_trip(tmp_path):
    gen = torch.Generator().manual_seed(0)
    mask = {"w": torch.rand(7, 13, generator=gen) > 0.6, "v": torch.rand(3, generator=gen) > 0.5,
            "lstm.weight_hh_l0": torch.rand(4, 2, 5, generator=gen) > 0.3}
    packed = pack_mask(mask)
    assert packed["bits"]["w"].dtype == torch.uint8 and packed["bits"]["w"].numel() == (91 + 7) // 8
    back = unpack_mask(packed)
    assert all(torch.equal(back[k], mask[k]) for k in mask)
    save_mask(tmp_path / "de.pt", mask, lang="de", info={"sparsity": 0.5})
    loaded, meta = load_mask(tmp_path / "de.pt")
    assert meta == {"lang": "de", "info": {"sparsity": 0.5}}
    assert list(loaded) == list(mask) and all(torch.equal(loaded[k], mask[k]) for k in mask)
    # The file is small: 1 bit per weight plus headers.
    assert (tmp_path / "de.pt").stat().st_size < 4000
    save_masks(tmp_path / "masks", {"en": mask, "de": mask})
    masks, _ = load_masks(tmp_path / "masks")
    assert list(masks) == ["de", "en"]


def test_bad_mask_files(tmp_path):
    (tmp_path / "x.pt").write_bytes(b"not a torch file")
    with pytest.raises(FormatError, match="x.pt: not a readable mask file"):
        load_mask(tmp_path / "x.pt")
    packed = pack_mask({"w": torch.ones(4, 4, dtype=torch.bool)})
    packed["shapes"]["w"] = [5, 5]
    with pytest.raises(FormatError, match="parameter 'w': 2 bytes of bits for shape"):
        unpack_mask(packed, "m.pt")
    save_mask(tmp_path / "masks" / "en.pt", {"w": torch.ones(2, dtype=torch.bool)}, lang="de")
    with pytest.raises(FormatError, match="holds the mask of language 'de', not 'en'"):
        load_masks(tmp_path / "masks")
    with pytest.raises(FileNotFoundError):
        load_masks(tmp_path / "none")
    with pytest.raises(ConfigError, match="parameter 'w' has shape"):
        check_mask_fits({"w": torch.ones(2, dtype=torch.bool)}, {"w": torch.zeros(3)}, "m.pt")


def test_language_pathway_restores_weights():
    model = nn.Linear(3, 2)
    before = model.weight.detach().clone()
    mask = {"weight": torch.tensor([[True, False, True], [False, False, True]])}
    with language_pathway(model, mask):
        assert torch.equal(model.weight, before * mask["weight"])
    assert torch.equal(model.weight, before)


def test_sparse_weights_load_dense_also_from_files_that_name_the_old_module(tmp_path, monkeypatch):
    import asrkit.models.masks as M
    import asrkit.pruning.masks  # noqa: F401 - where exported files of earlier versions point

    w = torch.tensor([[1.0, -2.0], [3.0, 0.5]])
    m = torch.tensor([[True, False], [True, True]])
    torch.save({"w": M.SparseWeight(w * m, m)}, tmp_path / "new.pt")
    assert torch.equal(torch.load(tmp_path / "new.pt", weights_only=False)["w"], w * m)
    # `asrkit export` files written before the masks moved to asrkit.models pickle the old name.
    monkeypatch.setattr(M._dense_from_packed, "__module__", "asrkit.pruning.masks")
    torch.save({"w": M.SparseWeight(w * m, m)}, tmp_path / "old.pt")
    monkeypatch.undo()
    assert b"asrkit.pruning.masks" in (tmp_path / "old.pt").read_bytes()
    assert torch.equal(torch.load(tmp_path / "old.pt", weights_only=False)["w"], w * m)
