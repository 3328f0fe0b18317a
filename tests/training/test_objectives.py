"""Tests for asrkit/training/objectives.py: CTC, frame CE, KL distillation, frame-count checks, mixing."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from asrkit.errors import AsrkitError, ConfigError
from asrkit.training.objectives import Objective, ce_loss, check_frame_counts, ctc_loss, kl_loss


def _toy_ctc_batch():
    torch.manual_seed(0)
    logits = torch.randn(3, 12, 6)
    out_lens = torch.tensor([12, 9, 2])
    targets = torch.tensor([[1, 2, 3, 2], [4, 4, 0, 0], [5, 1, 3, 0]])  # utt 3: 3 tokens in 2 frames
    target_lens = torch.tensor([4, 2, 3])
    return logits, out_lens, targets, target_lens


def test_ctc_reductions_and_normalisers():
    logits, out_lens, targets, target_lens = _toy_ctc_batch()
    per_utt = F.ctc_loss(logits.log_softmax(-1).transpose(0, 1), targets, out_lens, target_lens,
                         reduction="none", zero_infinity=True)
    assert per_utt[2] == 0  # infeasible: zeroed, not inf
    mean, n_utts = ctc_loss(logits, out_lens, targets, target_lens)
    assert n_utts == 3.0 and float(mean) == pytest.approx(float(per_utt.sum()) / 3, rel=1e-6)
    per_token, n_tokens = ctc_loss(logits, out_lens, targets, target_lens, reduction="token")
    assert n_tokens == 9.0 and float(per_token) == pytest.approx(float(per_utt.sum()) / 9, rel=1e-6)
    total, one = ctc_loss(logits, out_lens, targets, target_lens, reduction="sum")
    assert one == 1.0 and float(total) == pytest.approx(float(per_utt.sum()), rel=1e-6)
    with pytest.raises(ValueError, match="unknown reduction 'batch'"):
        ctc_loss(logits, out_lens, targets, target_lens, reduction="batch")


def test_ctc_bf16_logits_are_computed_in_float32():
    logits, out_lens, targets, target_lens = _toy_ctc_batch()
    loss, _ = ctc_loss(logits.bfloat16(), out_lens, targets, target_lens)
    assert loss.dtype == torch.float32
    ref, _ = ctc_loss(logits.bfloat16().float(), out_lens, targets, target_lens)
    assert float(loss) == float(ref)


def test_ctc_loss_finite_and_decreasing():
    torch.manual_seed(0)
    feats = torch.randn(2, 15, 4)
    out_lens = torch.tensor([15, 11])
    targets = torch.tensor([[1, 2, 1], [3, 3, 0]])
    target_lens = torch.tensor([3, 2])
    layer = torch.nn.Linear(4, 5)
    losses = []
    for _ in range(15):  # plain gradient descent (building a torch.optim optimizer costs ~1 s here)
        loss, _ = ctc_loss(layer(feats), out_lens, targets, target_lens)
        assert math.isfinite(loss.item())
        layer.zero_grad()
        loss.backward()
        with torch.no_grad():
            for p in layer.parameters():
                p -= 0.5 * p.grad
        losses.append(loss.item())
    assert all(b < a for a, b in zip(losses, losses[1:]))
    assert losses[-1] < 0.7 * losses[0]


def test_ce_loss_over_valid_frames():
    logits = torch.zeros(2, 4, 5)  # uniform: every counted frame costs ln 5
    logits[0, 1, 2] = 10.0  # a confident, correct frame
    labels = torch.tensor([[0, 2, 1, -100], [3, 3, 3, 3]])
    out_lens = torch.tensor([4, 2])  # utterance 2's frames 2, 3 are padding whatever their labels say
    loss, frames = ce_loss(logits, out_lens, labels)
    assert frames == 5.0  # 3 labelled frames of utterance 1, 2 valid frames of utterance 2
    confident = -torch.log_softmax(logits[0, 1], -1)[2]
    assert float(loss) == pytest.approx((4 * math.log(5) + float(confident)) / 5, rel=1e-6)


def test_ce_loss_labels_padded_to_another_length():
    logits = torch.zeros(1, 4, 3)
    loss_short, n_short = ce_loss(logits, torch.tensor([3]), torch.tensor([[0, 1, 2]]))
    loss_long, n_long = ce_loss(logits, torch.tensor([3]), torch.tensor([[0, 1, 2, -100, -100, -100]]))
    assert n_short == n_long == 3.0 and float(loss_short) == float(loss_long) == pytest.approx(math.log(3))


def test_kl_loss_closed_form_with_temperature():
    t = 2.0
    logits = torch.tensor([[[0.0, 2 * math.log(3), 0.0],   # / T -> softmax (1/5, 3/5, 1/5)
                            [0.0, 0.0, 0.0],                # / T -> uniform
                            [5.0, -5.0, 1.0]]])             # padding
    targets = torch.tensor([[[0.5, 0.5, 0.0],
                             [1 / 3, 1 / 3, 1 / 3],          # equals q: KL 0
                             [1.0, 0.0, 0.0]]])
    loss, frames = kl_loss(logits, torch.tensor([2]), targets, temperature=t)
    kl_first = 0.5 * math.log(0.5 / 0.2) + 0.5 * math.log(0.5 / 0.6)
    assert frames == 2.0
    assert float(loss) == pytest.approx(t * t * (kl_first + 0.0) / 2, rel=1e-5)


def test_kl_with_one_hot_targets_at_t1_equals_ce():
    torch.manual_seed(0)
    logits = torch.randn(2, 6, 7)
    out_lens = torch.tensor([6, 4])
    labels = torch.randint(0, 7, (2, 6))
    kl, kl_frames = kl_loss(logits, out_lens, F.one_hot(labels, 7).float(), temperature=1.0)
    ce, ce_frames = ce_loss(logits, out_lens, labels)
    assert kl_frames == ce_frames == 10.0
    assert float(kl) == pytest.approx(float(ce), rel=1e-6)


def test_kl_rejects_wrong_target_dimension():
    with pytest.raises(AsrkitError, match="soft targets have 5 columns but the model outputs 7 classes"):
        kl_loss(torch.zeros(1, 2, 7), torch.tensor([2]), torch.full((1, 2, 5), 0.2))


def test_check_frame_counts_names_first_mismatch():
    check_frame_counts(torch.tensor([10, 25]), [10, 25], ["a", "b"])
    with pytest.raises(AsrkitError) as err:
        check_frame_counts(torch.tensor([10, 25, 7]), torch.tensor([10, 100, 8]), ["a", "b", "c"], subsampling=4)
    msg = str(err.value)
    assert msg.startswith("utterance 'b': the targets have 100 frames but the model outputs 25 frames: ")
    assert "4.0x denser than the model output; the model subsamples frames by 4" in msg
    with pytest.raises(AsrkitError, match="utterance 'c': the targets have 33 frames but the model outputs 99 "
                                          "frames: .*frame_subsampling_factor=3"):
        check_frame_counts([99], [33], ["c"], subsampling=1)


def test_objective_kl_mixed_with_ce():
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 4, requires_grad=True)
    out_lens = torch.tensor([5, 3])
    labels = torch.randint(0, 4, (2, 5))
    soft = torch.softmax(torch.randn(2, 5, 4), -1)
    obj = Objective({"type": "kl", "temperature": 2.0, "mix": {"type": "ce", "weight": 0.3}})
    assert obj.required_targets == ("soft_targets", "frame_labels")
    assert obj.conf == {"type": "kl", "temperature": 2.0, "mix": {"type": "ce", "weight": 0.3}}
    loss, stats = obj(logits, out_lens, frame_labels=labels, soft_targets=soft)
    kl, _ = kl_loss(logits, out_lens, soft, temperature=2.0)
    ce, _ = ce_loss(logits, out_lens, labels)
    assert loss.item() == pytest.approx(0.7 * kl.item() + 0.3 * ce.item(), rel=1e-6)
    assert stats == pytest.approx({"loss_kl": kl.item(), "norm_kl": 8.0, "loss_ce": ce.item(), "norm_ce": 8.0,
                                   "loss": loss.item()})
    loss.backward()
    assert logits.grad is not None
    with pytest.raises(ValueError, match="objective 'ce' needs batch field\\(s\\) frame_labels"):
        obj(logits, out_lens, soft_targets=soft)


def test_objective_ctc_defaults():
    obj = Objective({"type": "ctc"})
    assert obj.conf == {"type": "ctc", "blank": 0, "reduction": "mean"}
    assert obj.required_targets == ("tokens", "token_lens")
    logits, out_lens, targets, target_lens = _toy_ctc_batch()
    loss, stats = obj(logits, out_lens, tokens=targets, token_lens=target_lens)
    assert float(loss) == float(ctc_loss(logits, out_lens, targets, target_lens)[0])
    assert stats["norm_ctc"] == 3.0 and stats["loss"] == stats["loss_ctc"]


@pytest.mark.parametrize("conf, message", [
    ({"type": "mse"}, "objective.type: expected one of ctc, ce, kl, got 'mse'"),
    ({"type": "kl", "temperature": 0}, "objective.temperature: expected a number > 0, got 0"),
    ({"type": "ctc", "temperature": 2.0}, r"objective: unknown option\(s\) 'temperature' for type 'ctc'"),
    ({"type": "ce", "mix": {"type": "ce", "weight": 0.5}}, "mixing 'ce' with itself"),
    ({"type": "kl", "mix": {"type": "ctc", "weight": 1.5}}, r"objective.mix.weight: expected a number in \[0, 1\]"),
    ({"type": "kl", "mix": {"type": "ctc"}}, "objective.mix.weight: expected a number in \\[0, 1\\], got None"),
    ({"type": "ctc", "reduction": "avg"}, "objective.reduction: expected one of mean, token, sum"),
])
def test_objective_config_errors(conf, message):
    with pytest.raises(ConfigError, match=message):
        Objective(conf)
