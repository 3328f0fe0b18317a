"""Dump -> train round trip: an LSTM teacher trained with CTC, its posteriors dumped at a DNN student's
frame rate, and the student trained with `objective: kl` (+ ctc) by `asrkit train`.

The loss itself is tested in tests/training/test_objectives.py: `test_kl_loss_closed_form_with_temperature`
(KL equals the closed form on a toy example, with T^2 scaling) and `test_kl_with_one_hot_targets_at_t1_equals_ce`
(temperature 1 with one-hot targets equals cross-entropy).
"""

from __future__ import annotations

import json

import pytest

from asrkit.distill.posteriors import dump_posteriors
from asrkit.errors import AsrkitError
from asrkit.models.modelfile import load_model
from asrkit.text.tokenizer import make_lang_dir
from asrkit.training.config import load_config
from asrkit.training.trainer import run_training
from tests.training.conftest import make_toy_data_dir

# data.max_padding=null: batches filled to max_frames, as these checks were written for (the first
# batch's utterances are the ones the frame-rate check names).
COMMON = ["data.max_frames=300", "data.max_padding=null", "training.log_interval=2", "scheduler.warmup_steps=4",
          "model.head={type: mtl}"]
STUDENT = "model:\n  encoder: {type: dnn, hidden_dims: [32], context: 3, subsample: 2}\n  head: {type: mtl}\n"


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    """A small BLSTM trained with CTC on the toy task, and the data it was trained on."""
    root = tmp_path_factory.mktemp("distill")
    train = make_toy_data_dir(root, "train", utts_per_lang=16, seed=1)
    valid = make_toy_data_dir(root, "valid", utts_per_lang=4, seed=2)
    lang = root / "lang"
    make_lang_dir([train], lang, token_type="char")
    conf = load_config(None, [*COMMON, "model.encoder={type: lstm, hidden_dim: 32, num_layers: 1}",
                              "optim.lr=1e-2", "training.epochs=4"])
    final = run_training(conf, train_dirs=[train], valid_dirs=[valid], lang_dir=str(lang), out_dir=root / "teacher")
    (root / "student.yaml").write_text(STUDENT)
    return root, final, train, valid, lang


def _valid_losses(out):
    rows = [json.loads(line) for line in (out / "log" / "metrics.jsonl").read_text().splitlines()]
    return [r["valid_loss"] for r in rows if "valid_loss" in r]


@pytest.mark.parametrize("topk", [0, 3], ids=["matrix", "posterior"])
def test_dump_then_train_dnn_student(teacher, topk):
    root, final, train, valid, lang = teacher
    student_conf = root / "student.yaml"
    posts = {}
    for name, data in (("train", train), ("valid", valid)):
        result = dump_posteriors(final, data, root / f"post{topk}_{name}", temperature=2.0, topk=topk,
                                 frame_rate_of=student_conf, nj=2 if name == "train" else 1)
        posts[name] = result.post_scp
    conf = load_config(student_conf, [*COMMON, "objective.type=kl", "objective.temperature=2.0",
                                      f"objective.targets={posts['train']}", f"objective.valid_targets={posts['valid']}",
                                      "objective.mix={type: ctc, weight: 0.2}", "optim.lr=5e-3", "training.epochs=5"])
    out = root / f"student{topk}"
    run_training(conf, train_dirs=[train], valid_dirs=[valid], lang_dir=str(lang), out_dir=out)
    losses = _valid_losses(out)
    assert len(losses) == 5 and all(b < a for a, b in zip(losses, losses[1:])) and losses[-1] < 0.9 * losses[0]
    model, meta = load_model(out / "final.pt")
    assert meta.frame_subsampling == 2 and meta.model_conf["encoder"]["type"] == "dnn"
    teacher_model, teacher_meta = load_model(final)
    assert meta.vocab_sizes == teacher_meta.vocab_sizes
    # The student is the cheap model: fewer parameters than its teacher.
    assert model.param_counts()["total"] < teacher_model.param_counts()["total"]


def test_posteriors_at_another_frame_rate_name_the_utterance(teacher):
    root, final, train, _, lang = teacher
    # Dumped at the teacher's own rate (one row per input frame), trained by a student that subsamples by 2.
    post = dump_posteriors(final, train, root / "post_teacher_rate").post_scp
    conf = load_config(root / "student.yaml", [*COMMON, "objective.type=kl", f"objective.targets={post}"])
    with pytest.raises(AsrkitError, match=r"utterance '\w+-\d+': the targets have \d+ frames but the model outputs "
                                          r"\d+ frames: the targets are about 2\.\dx denser than the model output; "
                                          r"the model subsamples frames by 2"):
        run_training(conf, train_dirs=[train], lang_dir=str(lang), out_dir=root / "mismatch")
