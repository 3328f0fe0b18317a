"""Decoding: CTC greedy / prefix beam search, RNN-T search, log-likelihood export."""
