"""The eSpeak synthesis server (asrkit/corpora/espeak_server.py): its protocol, the fork per request
that keeps every utterance independent of the ones before, and its failure replies."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from asrkit.corpora import espeak, espeak_server
from asrkit.corpora.espeak_server import FAILED, OK


def test_request_round_trip_through_a_pipe():
    r, w = os.pipe()
    espeak_server.write_all(w, espeak_server.encode_request("grüß dich", "de+m3", 160, 40, 55, 7))
    os.close(w)
    assert espeak_server.read_request(r) == {"text": "grüß dich", "voice": "de+m3", "rate": 160, "pitch": 40,
                                             "range": 55, "seed": 7}
    assert espeak_server.read_request(r) is None  # the client closed its end
    os.close(r)


def test_reply_framing():
    reply = espeak_server.encode_reply(OK, b"\x01\x00\x02\x00")
    assert reply[:espeak_server.REPLY_HEADER.size] == struct.pack("<BQ", 0, 4)
    assert espeak_server.is_whole_reply(reply)
    assert not espeak_server.is_whole_reply(reply[:-1])         # cut short
    assert not espeak_server.is_whole_reply(reply + b"\x00")    # trailing bytes
    assert not espeak_server.is_whole_reply(b"")


class _StatefulEngine:
    """Stands in for `Engine`: like libespeak-ng, it carries state from one call to the next."""

    def __init__(self):
        self.chunks: list[bytes] = []

    def synthesize(self, req):
        self.chunks.append(req["text"].encode())
        return OK, b"|".join(self.chunks)


def _decode(reply: bytes) -> tuple[int, bytes]:
    status, length = espeak_server.REPLY_HEADER.unpack(reply[:espeak_server.REPLY_HEADER.size])
    return status, reply[espeak_server.REPLY_HEADER.size:]


def test_each_request_starts_from_the_servers_state():
    engine = _StatefulEngine()
    first = _decode(espeak_server.synthesize_in_fork(engine, {"text": "one"}))
    second = _decode(espeak_server.synthesize_in_fork(engine, {"text": "two"}))
    # Run in the process itself, the second call would see "one" too; in a fork it cannot.
    assert first == (OK, b"one") and second == (OK, b"two")
    assert engine.chunks == []


class _DyingEngine:
    def synthesize(self, req):
        os._exit(3)


class _RaisingEngine:
    def synthesize(self, req):
        raise ValueError("no such phoneme")


def test_a_child_that_dies_or_raises_gives_an_error_reply():
    status, payload = _decode(espeak_server.synthesize_in_fork(_DyingEngine(), {"text": "x"}))
    assert status == FAILED and payload == f"synthesis process died (wait status {3 << 8})".encode()
    status, payload = _decode(espeak_server.synthesize_in_fork(_RaisingEngine(), {"text": "x"}))
    assert status == FAILED and payload == b"ValueError('no such phoneme')"


@pytest.mark.skipif(espeak.library_paths() is None, reason="no espeakng-loader")
def test_the_server_reports_a_failed_initialisation_and_exits_1():
    lib_path, _ = espeak.library_paths()
    source = Path(espeak_server.__file__).read_text(encoding="utf-8")
    proc = subprocess.run([sys.executable, "-S", "-c", source, lib_path, "/no/such/folder"], input=b"",
                          capture_output=True, timeout=60)
    assert proc.returncode == 1
    assert _decode(proc.stdout) == (FAILED, b"espeak_Initialize failed (status 0)")


@pytest.mark.skipif(espeak.library_paths() is None, reason="no espeakng-loader")
def test_the_library_client_speaks_through_the_server():
    engine = espeak.EspeakLibrary()
    try:
        voice = espeak.Voice("en", "m3", rate=170)
        a = engine.synthesize("hello world", voice, seed=5)
        engine.synthesize("something else first", voice, seed=1)
        b = engine.synthesize("hello world", voice, seed=5)
        assert engine.sample_rate == 22050 and a.dtype.name == "int16" and a.size > 0.3 * engine.sample_rate
        assert (a == b).all()  # the same arguments give the same samples, whatever came before
    finally:
        engine.close()
