"""Corpus preparation: one module per corpus, each writing Kaldi data dirs (`asrkit prepare <corpus>`)."""
