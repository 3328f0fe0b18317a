"""`asrkit prune`, `asrkit prune-stats`, `asrkit export`: stage 5, sparse language pathways."""

from __future__ import annotations

import click


@click.command("prune")
@click.option("--method", type=click.Choice(["agnostic", "mono", "pathways"]), required=True,
              help="One mask for all languages, one pruned model per language, or language pathways.")
@click.option("--model", "model_path", required=True, help="The dense model file (EXP/final.pt).")
@click.option("--sparsity", type=float, required=True, help="Fraction of the prunable weights to remove, e.g. 0.7.")
@click.option("--train-data", multiple=True, required=True, help="Training data dir (repeat for several).")
@click.option("--out-dir", required=True, help="Where masks/, final.pt and the fine-tuning runs go.")
@click.option("--rounds", type=click.IntRange(min=1), default=3, show_default=True, help="Prune + fine-tune rounds.")
@click.option("--schedule", type=click.Choice(["imp", "cubic"]), default="imp", show_default=True,
              help="Sparsity per round: geometric (iterative magnitude pruning) or cubic.")
@click.option("--steps-per-round", type=click.IntRange(min=0), default=100, show_default=True,
              help="Fine-tuning steps after each pruning round (0: prune only).")
@click.option("--joint-steps", type=click.IntRange(min=0),
              help="pathways: joint training steps [default: steps-per-round x languages].")
@click.option("--scope", type=click.Choice(["layer", "global"]), default="layer", show_default=True,
              help="Rank magnitudes per weight matrix or over all of them.")
@click.option("--prune-biases", is_flag=True, help="Prune the biases of linear/LSTM/conv layers too.")
@click.option("--prune-embeddings", is_flag=True, help="Prune embedding tables too.")
@click.option("--masks-from", help="pathways: take the language masks from this earlier `--method mono` out dir.")
@click.option("--config", "config_path", help="Fine-tuning config (YAML) [default: the model's exp dir config.yaml].")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a fine-tuning config value.")
@click.option("--overwrite", is_flag=True, help="Redo fine-tuning runs that already finished.")
def prune(method, model_path, sparsity, train_data, out_dir, rounds, schedule, steps_per_round, joint_steps, scope,
          prune_biases, prune_embeddings, masks_from, config_path, overrides, overwrite) -> None:
    """Prune MODEL by weight magnitude in rounds with fine-tuning; write OUT_DIR/masks/<lang>.pt.

    \b
    Example:
      asrkit prune --method pathways --model exp/rnnt/final.pt --sparsity 0.7 \\
          --train-data data/train --out-dir exp/rnnt_pathways70 --rounds 3 --steps-per-round 500
    """
    from asrkit.logutil import setup_logging
    from asrkit.pruning.prune import FineTuning, PruneOptions
    from asrkit.pruning.prune import prune as run_prune
    from asrkit.training.config import load_config
    from asrkit.training.trainer import run_training

    setup_logging()
    opts = PruneOptions(sparsity=sparsity, rounds=rounds, schedule=schedule, steps_per_round=steps_per_round,
                        joint_steps=joint_steps, scope=scope, include_biases=prune_biases,
                        include_embeddings=prune_embeddings, config=config_path, overrides=tuple(overrides),
                        masks_from=masks_from)
    # Pruning fine-tunes with the trainer; the CLI hands it over so the two stages stay apart.
    result = run_prune(method, model_path, list(train_data), out_dir, opts,
                       fine_tuning=FineTuning(load_config, run_training), overwrite=overwrite)
    click.echo(f"masks: {result.masks_dir}")
    for name, path in result.models.items():
        click.echo(f"model ({name}): {path}")


@click.command("prune-stats")
@click.argument("exp_dir")
@click.option("--no-layers", is_flag=True, help="Leave out the per-layer table.")
def prune_stats(exp_dir, no_layers) -> None:
    """Per-language and per-layer sparsity, union sparsity and language overlap (IoU) of EXP_DIR/masks."""
    from asrkit.pruning.prune import format_prune_stats

    click.echo(format_prune_stats(exp_dir, per_layer=not no_layers))


@click.command("export")
@click.option("--model", "model_path", required=True, help="A pruned model file (asrkit prune's final.pt).")
@click.option("--lang", required=True, help="The language whose pathway to export.")
@click.option("--out", required=True, help="Output model file.")
def export(model_path, lang, out) -> None:
    """Write a single-language model with its mask applied, stored sparsely, and print its size."""
    from asrkit.pruning.prune import export_language

    info = export_language(model_path, lang, out)
    click.echo(f"{out}: language {lang}, {info['kept']:,} of {info['params']:,} parameters kept "
               f"({100 * (1 - info['kept'] / max(info['params'], 1)):.1f}% sparse); "
               f"{info['bytes'] / 1e6:.3f} MB on disk (dense weights {info['dense_bytes'] / 1e6:.3f} MB)")
