"""`asrkit prune`: language-agnostic, monolingual and pathway pruning of a trained model; stats and export.

Every method prunes by weight magnitude in rounds (`imp`: the sparsity grows geometrically,
`1 - (1 - S)^(r/R)`; `cubic`: Zhu & Gupta's `S (1 - (1 - r/R)^3)`); each round fine-tunes on the
method's data inside the current mask, then prunes, and a last fine-tuning follows the last round.
Fine-tuning uses the ordinary trainer, which the caller hands in (`FineTuning`: asrkit.cli.prune
passes asrkit.training's config loader and `run_training`), so that this stage does not import the
training stage; the pathway hook of asrkit.models.pathways holds the weights outside the mask at zero:

- `agnostic`: one mask from all languages' data (written as every language's mask);
- `mono`: for each language, the model pruned on that language's data alone (`OUT/<lang>/final.pt`);
- `pathways`: each language's mask found as in `mono` (or taken from `--masks-from`), then joint
  multilingual training from the dense model where each batch runs with θ ⊙ m_lang and updates only
  the weights in m_lang (asrkit.models.pathways).

Outputs: `OUT/masks/<lang>.pt`, `OUT/final.pt` (agnostic, pathways) whose metadata carries the
masks (`meta["pathways"]`, applied per utterance language by `asrkit decode`), and the rounds'
experiment dirs.
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from asrkit.errors import ConfigError, DataDirError
from asrkit.fileio import atomic_write, atomic_write_text
from asrkit.kaldi.datadir import subset_data_dir
from asrkit.kaldi.textio import read_table
from asrkit.models.masks import Mask, SparseWeight, load_masks, pack_mask, save_masks, union_mask, unpack_mask
from asrkit.models.modelfile import ModelMeta, atomic_torch_save, load_model, read_model_file, read_model_meta
from asrkit.pruning.masks import (
    foreign_parameter_names,
    magnitude_mask,
    mask_density,
    mask_stats,
    prunable_parameters,
)

log = logging.getLogger("asrkit.prune")

METHODS = ("agnostic", "mono", "pathways")
SCHEDULES = ("imp", "cubic")


def sparsity_schedule(target: float, rounds: int, schedule: str = "imp") -> list[float]:
    """The sparsity after each of `rounds` rounds, ending at `target`.

    Raises:
        ConfigError: target outside [0, 1), rounds < 1, unknown schedule.
    """
    if not 0.0 <= target < 1.0:
        raise ConfigError(f"--sparsity must be in [0, 1), got {target}")
    if rounds < 1:
        raise ConfigError(f"--rounds must be at least 1, got {rounds}")
    if schedule == "imp":
        return [1.0 - (1.0 - target) ** (r / rounds) for r in range(1, rounds + 1)]
    if schedule == "cubic":
        return [target * (1.0 - (1.0 - r / rounds) ** 3) for r in range(1, rounds + 1)]
    raise ConfigError(f"unknown schedule {schedule!r} (choose from {', '.join(SCHEDULES)})")


@dataclass
class PruneOptions:
    """How to prune: target sparsity, rounds and schedule, ranking scope, what is prunable, fine-tuning."""

    sparsity: float
    rounds: int = 3
    schedule: str = "imp"
    steps_per_round: int = 100
    joint_steps: int | None = None  # pathways: joint training steps (default: steps_per_round x languages)
    scope: str = "layer"
    include_biases: bool = False
    include_embeddings: bool = False
    config: str | None = None  # fine-tuning config (YAML); default: the model's exp dir config.yaml
    overrides: tuple[str, ...] = ()
    masks_from: str | None = None  # pathways: reuse OUT/masks of an earlier (mono) run


@dataclass(frozen=True)
class FineTuning:
    """The trainer pruning fine-tunes with.

    load_config: `(path or None, overrides, base=dict) -> config`, the training config loader
        (asrkit.training.config.load_config); the config it returns has the sections `training`
        and `scheduler` whose values `_Pruner._conf` sets.
    run_training: `(config, *, train_dirs, lang_dir, out_dir, overwrite, command) -> final model
        file` (asrkit.training.trainer.run_training).
    """

    load_config: Callable[..., object]
    run_training: Callable[..., Path]


@dataclass
class PruneResult:
    out_dir: Path
    masks_dir: Path
    models: dict[str, Path] = field(default_factory=dict)  # "all" or a language -> model file


def lang_dir_from_meta(meta: ModelMeta, path: Path) -> Path:
    """Write a lang dir (lang.yaml + <set>/tokens.model) from a model file's embedded tokenizers.

    Raises:
        ConfigError: the model file has no tokenizers.
    """
    tokens = meta.tokens
    if tokens is None:
        raise ConfigError("the model file has no token sets; pruning fine-tunes on text targets (ctc or rnnt)")
    for name, proto in tokens.models.items():
        (path / name).mkdir(parents=True, exist_ok=True)
        target = path / name / "tokens.model"
        if not target.is_file() or target.read_bytes() != proto:
            with atomic_write(target, "wb", encoding=None) as f:
                f.write(proto)
    atomic_write_text(path / "lang.yaml", yaml.safe_dump({"token_type": tokens.token_type,
                                                         "languages": dict(tokens.lang2set)}, sort_keys=True))
    return path


def language_subsets(train_dirs: Sequence[str | os.PathLike], lang: str, work_dir: Path) -> list[Path]:
    """Per-language subsets (`work_dir/<lang>/<i>`) of the training data dirs, by utt2lang.

    Raises:
        DataDirError: no data dir has utterances of `lang`.
    """
    out = []
    for i, d in enumerate(train_dirs):
        d = Path(d)
        utt2lang = read_table(d / "utt2lang", num_fields=2) if (d / "utt2lang").is_file() else {}
        keys = [k for k, v in utt2lang.items() if v == lang]
        if not keys:
            continue
        dst = work_dir / lang / str(i)
        dst.parent.mkdir(parents=True, exist_ok=True)
        utt_list = work_dir / lang / f"{i}.utts"
        utt_list.write_text("".join(k + "\n" for k in keys))
        subset_data_dir(d, dst, utt_list=utt_list)
        out.append(dst)
    if not out:
        raise DataDirError(f"no utterance of language '{lang}' in {', '.join(map(str, train_dirs))} (utt2lang)")
    return out


class _Pruner:
    def __init__(self, method: str, model_path: Path, train_dirs, out_dir: Path, opts: PruneOptions,
                 fine_tuning: FineTuning, overwrite: bool):
        if method not in METHODS:
            raise ConfigError(f"unknown pruning method {method!r} (choose from {', '.join(METHODS)})")
        self.method, self.model_path, self.out_dir, self.opts = method, model_path, out_dir, opts
        self.train_dirs = [Path(d) for d in train_dirs]
        self.fine_tuning, self.overwrite = fine_tuning, overwrite
        self.schedule = sparsity_schedule(opts.sparsity, opts.rounds, opts.schedule)
        self.meta = read_model_meta(model_path)
        self.languages = list(self.meta.languages)
        out_dir.mkdir(parents=True, exist_ok=True)
        self.lang_dir = lang_dir_from_meta(self.meta, out_dir / "lang")
        self.base_conf = self._base_conf()

    def _base_conf(self):
        exp_conf = self.model_path.parent / "config.yaml"
        base = yaml.safe_load(exp_conf.read_text()) if exp_conf.is_file() else {}
        base = dict(base or {})
        base["model"] = dict(base.get("model") or {}, **self.meta.model_conf)
        base.setdefault("objective", {})["type"] = self.meta.objective
        base.setdefault("training", {}).update({"init_from": None, "pathways": None, "max_steps": None})
        return self.fine_tuning.load_config(self.opts.config, self.opts.overrides, base=base)

    def _conf(self, init_from: Path, masks_dir: Path | None, steps: int):
        """The fine-tuning config: `steps` optimizer steps (training.max_steps), a schedule of that
        length, from `init_from`, inside `masks_dir`'s masks."""
        conf = copy.deepcopy(self.base_conf)
        t = conf.training
        t.init_from, t.max_steps = str(init_from), int(steps)
        t.pathways = str(masks_dir) if masks_dir is not None else None
        conf.scheduler.total_steps = int(steps)
        conf.scheduler.warmup_steps = min(conf.scheduler.warmup_steps, max(1, steps // 10))
        return conf

    def _train(self, init_from: Path, masks_dir: Path | None, data_dirs, steps: int, out: Path) -> Path:
        conf = self._conf(init_from, masks_dir, steps)
        return self.fine_tuning.run_training(conf, train_dirs=[str(d) for d in data_dirs], lang_dir=str(self.lang_dir), out_dir=out,
                            overwrite=self.overwrite, command=f"asrkit prune ({self.method}): fine-tune {out.name}")

    def _load(self, path: Path):
        model, _ = load_model(path)
        return model

    def _params(self, model) -> dict:
        return prunable_parameters(model, include_biases=self.opts.include_biases,
                                   include_embeddings=self.opts.include_embeddings)

    def _info(self, model, lang: str | None, mask: Mask) -> dict:
        foreign = sorted(foreign_parameter_names(model, lang)) if lang is not None else []
        params = self._params(model)
        prunable_ids = {id(p) for p in params.values()}
        foreign_set = set(foreign)
        fixed = sum(p.numel() for n, p in model.named_parameters() if id(p) not in prunable_ids and n not in foreign_set)
        return {"method": self.method, "target_sparsity": self.opts.sparsity, "scope": self.opts.scope,
                "schedule": self.opts.schedule, "rounds": self.opts.rounds, "foreign": foreign,
                "fixed_params": int(fixed), "model_params": int(sum(p.numel() for p in model.parameters())),
                "sparsity": 1.0 - mask_density(mask, foreign), "model": str(self.model_path)}

    def prune_rounds(self, work: Path, data_dirs, mask_langs: list[str], exclude_for: str | None,
                     finish: bool = True) -> tuple[Mask, Path]:
        """Rounds of fine-tuning on `data_dirs` (inside the current mask) then magnitude pruning, from the
        input model; with `finish`, a last fine-tuning inside the final mask. Fine-tuning before each
        pruning is what makes a language's mask its own: the weights its data moves are the ones kept.

        Returns:
            (the final mask, the last model file).
        """
        current: Mask | None = None
        masks_dir: Path | None = None
        model_path = self.model_path
        steps = self.opts.steps_per_round
        for r, sparsity in enumerate(self.schedule, start=1):
            if steps > 0:
                model_path = self._train(model_path, masks_dir, data_dirs, steps, work / f"round{r}")
            model = self._load(model_path)
            params = self._params(model)
            exclude = foreign_parameter_names(model, exclude_for) & set(params) if exclude_for else set()
            current = magnitude_mask(params, sparsity, scope=self.opts.scope, current=current, exclude=exclude)
            masks_dir = save_masks(work / f"round{r}" / "masks", {lang: current for lang in mask_langs},
                                   {lang: self._info(model, exclude_for, current) for lang in mask_langs})
            log.info("%s round %d/%d: pruned to sparsity %.3f (%s)", work.name, r, len(self.schedule), sparsity,
                     ", ".join(mask_langs))
        if finish and steps > 0:
            model_path = self._train(model_path, masks_dir, data_dirs, steps, work / "final")
        return current, model_path

    def write_model(self, src: Path, dst: Path, masks: dict[str, Mask]) -> Path:
        """Copy a model file with the masks applied (union) and recorded in its `pathways` entry."""
        obj = read_model_file(src)
        union = union_mask(masks.values())
        for n, m in union.items():
            obj["state_dict"][n] = obj["state_dict"][n] * m.to(obj["state_dict"][n].dtype)
        obj["pathways"] = {"method": self.method, "target_sparsity": self.opts.sparsity,
                           "masks": {lang: pack_mask(m) for lang, m in masks.items()}}
        atomic_torch_save(obj, dst)
        return dst

    def run(self) -> PruneResult:
        result = PruneResult(self.out_dir, self.out_dir / "masks")
        if self.method == "agnostic":
            mask, last = self.prune_rounds(self.out_dir / "rounds", self.train_dirs, self.languages, None)
            model = self._load(last)
            masks = {lang: mask for lang in self.languages}
            save_masks(result.masks_dir, masks, {lang: self._info(model, None, mask) for lang in self.languages})
            result.models["all"] = self.write_model(last, self.out_dir / "final.pt", masks)
            return result
        masks = self.language_masks(result)
        if self.method == "pathways":
            steps = self.opts.joint_steps if self.opts.joint_steps is not None \
                else self.opts.steps_per_round * len(self.languages)
            joint = self._train(self.model_path, result.masks_dir, self.train_dirs, steps, self.out_dir / "joint") \
                if steps > 0 else self.model_path
            result.models["all"] = self.write_model(joint, self.out_dir / "final.pt", masks)
        return result

    def language_masks(self, result: PruneResult) -> dict[str, Mask]:
        """One mask per language from pruning on that language's data (mono writes its models too)."""
        if self.method == "pathways" and self.opts.masks_from:
            masks, infos = load_masks(Path(self.opts.masks_from) / "masks")
            missing = [lang for lang in self.languages if lang not in masks]
            if missing:
                raise ConfigError(f"{self.opts.masks_from}/masks: no mask for language '{missing[0]}'")
            for lang in infos:
                infos[lang] = dict(infos[lang], method="pathways")
            save_masks(result.masks_dir, masks, infos)
            return masks
        masks, infos = {}, {}
        for lang in self.languages:
            data = language_subsets(self.train_dirs, lang, self.out_dir / "data")
            work = self.out_dir / ("search" if self.method == "pathways" else "") / lang
            masks[lang], last = self.prune_rounds(work, data, [lang], lang, finish=self.method == "mono")
            infos[lang] = self._info(self._load(last), lang, masks[lang])
            if self.method == "mono":
                result.models[lang] = self.write_model(last, work / "final.pt", {lang: masks[lang]})
        save_masks(result.masks_dir, masks, infos)
        return masks


def prune(method: str, model_path: str | os.PathLike, train_dirs: Sequence[str | os.PathLike],
          out_dir: str | os.PathLike, opts: PruneOptions, *, fine_tuning: FineTuning,
          overwrite: bool = False) -> PruneResult:
    """Prune a trained model (see the module docstring).

    Args:
        method: "agnostic", "mono" or "pathways".
        model_path: the dense model file (its exp dir's config.yaml, when present, is the base of
            the fine-tuning config).
        train_dirs: data dirs (features, text, utt2lang) used for fine-tuning and, per language, for the
            language masks.
        out_dir: where masks, models and the fine-tuning runs go.
        opts: sparsity, rounds, schedule, scope, fine-tuning steps and config.
        fine_tuning: the trainer to fine-tune with.
        overwrite: retrain fine-tuning runs that exist (else a finished run with the same config is reused).

    Returns:
        a PruneResult (masks dir and the model files written).

    Raises:
        ConfigError: bad options or a model without token sets; DataDirError: a language without data.
    """
    return _Pruner(method, Path(model_path), train_dirs, Path(out_dir), opts, fine_tuning, overwrite).run()


def find_masks_dir(path: str | os.PathLike) -> Path:
    """`path/masks` if it exists, else `path` (an exp dir or a masks folder)."""
    path = Path(path)
    return path / "masks" if (path / "masks").is_dir() else path


def format_prune_stats(exp_dir: str | os.PathLike, per_layer: bool = True) -> str:
    """The `asrkit prune-stats` report: per-language sparsity and parameters, union, IoU, per layer.

    Raises:
        FileNotFoundError / FormatError: no or bad mask files.
    """
    masks, infos = load_masks(find_masks_dir(exp_dir))
    langs = sorted(masks)
    first = infos[langs[0]]
    stats = mask_stats(masks, foreign={lang: infos[lang].get("foreign", ()) for lang in langs},
                       fixed_params={lang: infos[lang].get("fixed_params", 0) for lang in langs},
                       model_params=first.get("model_params"))
    lines = [f"masks: {find_masks_dir(exp_dir)} (method {first.get('method', '?')}, target sparsity "
             f"{first.get('target_sparsity', float('nan')):.2f}, {first.get('scope', '?')} ranking)", ""]
    width = max(8, *(len(lang) for lang in langs))
    lines.append(f"{'language':<{width}}  {'sparsity':>8}  {'kept':>10}  {'params':>10}")
    for lang in langs:
        lines.append(f"{lang:<{width}}  {100 * stats['languages_sparsity'][lang]:7.2f}%  {stats['kept'][lang]:>10,}  "
                     f"{stats['pathway_params'][lang]:>10,}")
    union_params = stats.get("union_params")
    lines.append(f"{'union':<{width}}  {100 * stats['union_sparsity']:7.2f}%  {stats['union_kept']:>10,}  "
                 f"{union_params if union_params is None else format(union_params, ','):>10}")
    lines += ["", "(sparsity over the prunable weights a language uses; params = kept prunable weights + the "
              "never-pruned parameters it uses; union = what the whole model keeps)", "", "overlap (IoU)"]
    lines.append(" " * width + "".join(f"  {lang:>{max(6, len(lang))}}" for lang in langs))
    for a in langs:
        lines.append(f"{a:<{width}}" + "".join(f"  {stats['iou'][a][b]:>{max(6, len(b))}.3f}" for b in langs))
    if per_layer:
        name_w = max(len(n) for n in stats["layers"])
        lines += ["", f"{'layer':<{name_w}}  {'size':>9}" + "".join(f"  {lang:>7}" for lang in langs) + "    union"]
        for n, row in stats["layers"].items():
            lines.append(f"{n:<{name_w}}  {row['size']:>9,}" + "".join(f"  {100 * row[lang]:6.1f}%" for lang in langs)
                         + f"  {100 * row['union']:6.1f}%")
    return "\n".join(lines)


def export_language(model_path: str | os.PathLike, lang: str, out: str | os.PathLike) -> dict:
    """Write a single-language model: `lang`'s mask applied, other languages' layers (and a transducer's
    training-only auxiliary CTC layer) dropped, the pruned weight tensors stored as packed mask bits +
    kept values (they load as ordinary dense tensors).

    Returns:
        `{"kept": n, "params": n, "bytes": file size, "dense_bytes": size of the weights stored densely}`.

    Raises:
        ConfigError: the model has no masks (not from `asrkit prune`) or none for `lang`.
    """
    obj = read_model_file(model_path)
    pathways = obj.get("pathways") or {}
    if not pathways.get("masks"):
        raise ConfigError(f"{model_path}: no language masks (make the model with `asrkit prune`)")
    if lang not in pathways["masks"]:
        raise ConfigError(f"{model_path}: no mask for language '{lang}' (it has: {', '.join(sorted(pathways['masks']))})")
    mask = unpack_mask(pathways["masks"][lang], f"{model_path} mask of '{lang}'")
    model, _ = load_model(model_path)
    foreign = foreign_parameter_names(model, lang)
    # A transducer's auxiliary CTC layer (model.aux_ctc) only trains the encoder: not exported.
    training_only = "aux_ctc" in (obj.get("model_conf") or {})
    state, kept, total, dense_bytes = {}, 0, 0, 0
    for name, value in obj["state_dict"].items():
        if name in foreign or (training_only and name.startswith("ctc_head.")):
            continue
        dense_bytes += value.numel() * value.element_size()
        if name in mask:
            pruned = value * mask[name].to(value.dtype)
            state[name] = SparseWeight(pruned, mask[name])
            kept += int(mask[name].sum())
        else:
            state[name] = value
            kept += value.numel() if value.is_floating_point() else 0
        total += value.numel() if value.is_floating_point() else 0
    out_obj = {k: v for k, v in obj.items() if k not in ("state_dict", "pathways")}
    out_obj["state_dict"] = state
    if training_only:
        out_obj["model_conf"] = {k: v for k, v in obj["model_conf"].items() if k != "aux_ctc"}
    if lang in obj["vocab_sizes"]:
        out_obj["vocab_sizes"] = {lang: obj["vocab_sizes"][lang]}
        out_obj["languages"] = [lang]
    tokens = obj.get("tokens")
    if tokens and lang in tokens["lang2set"]:
        name = tokens["lang2set"][lang]
        out_obj["tokens"] = dict(tokens, lang2set={lang: name}, models={name: tokens["models"][name]})
    out_obj["exported"] = {"lang": lang, "from": str(model_path), "method": pathways.get("method"),
                           "kept_params": kept, "params": total}
    atomic_torch_save(out_obj, out)
    return {"kept": kept, "params": total, "bytes": Path(out).stat().st_size, "dense_bytes": dense_bytes}

