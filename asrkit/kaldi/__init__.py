"""Kaldi formats: data directories, ark/scp tables, wav.scp reading."""
