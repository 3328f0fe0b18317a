"""Fixtures of the data-dir tests (the fixture data dir itself is `fixture_datadir` in tests/conftest.py)."""

from __future__ import annotations

import logging

import pytest


@pytest.fixture
def log_records(caplog):
    """Capture asrkit log records even when setup_logging() turned propagation off."""
    logger = logging.getLogger("asrkit")
    logger.addHandler(caplog.handler)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    yield caplog
    logger.removeHandler(caplog.handler)
    logger.setLevel(old_level)
