"""asrkit: Kaldi-style recipes for multilingual speech recognition in PyTorch.

Importing the package is cheap on purpose: torch and torchaudio are imported by the modules that
need them, so `asrkit --help` answers instantly.
"""

__version__ = "0.1.0"
