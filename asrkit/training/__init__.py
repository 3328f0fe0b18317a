"""Training: objectives, datasets and batching, the trainer, distributed strategies, EMA, checkpoints."""
