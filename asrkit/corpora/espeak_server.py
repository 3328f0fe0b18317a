"""The eSpeak synthesis server that `asrkit.corpora.espeak.EspeakLibrary` runs in a process of its own.

It initialises libespeak-ng once, then forks one child per request, so every utterance starts from
the freshly initialised library state (see asrkit.corpora.espeak for why that matters). It is run
as `python -S -c <this file's source> LIB_PATH DATA_PARENT`: stdlib only, no numpy or torch mapped,
so forking it costs a few milliseconds against tens for a worker that has torch loaded. Hence it
imports nothing from asrkit; the client imports its protocol helpers from here.

Protocol, over the server's stdin and stdout:
    request: <u32 length><UTF-8 JSON {text, voice, rate, pitch, range, seed}>
    reply:   <u8 status><u64 length><payload>: status 0 = little-endian int16 samples, 1 = error text.
    At start the server sends one reply whose payload is the sample rate (`<i4`, status 0) or an error.
"""

import ctypes
import json
import os
import struct
import sys

REPLY_HEADER = struct.Struct("<BQ")
REQUEST_HEADER = struct.Struct("<I")
OK, FAILED = 0, 1

# espeak_Initialize / espeak_SetParameter / espeak_Synth constants (speak_lib.h).
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_ESPEAK_INITIALIZE_DONT_EXIT = 0x8000
_PARAMETERS = {"rate": 1, "pitch": 3, "range": 4}
_POS_CHARACTER = 1
_ESPEAK_CHARS_UTF8 = 1


def encode_request(text: str, voice: str, rate: int, pitch: int, pitch_range: int, seed: int) -> bytes:
    """One request as the server reads it."""
    body = json.dumps({"text": text, "voice": voice, "rate": rate, "pitch": pitch, "range": pitch_range,
                       "seed": int(seed)}).encode("utf-8")
    return REQUEST_HEADER.pack(len(body)) + body


def encode_reply(status: int, payload: bytes) -> bytes:
    return REPLY_HEADER.pack(status, len(payload)) + payload


def is_whole_reply(data: bytes) -> bool:
    """Whether `data` is exactly one reply (header and the payload length it announces)."""
    return len(data) >= REPLY_HEADER.size and len(data) == REPLY_HEADER.size + REPLY_HEADER.unpack(
        data[:REPLY_HEADER.size])[1]


def read_exact(fd: int, n: int):
    """`n` bytes from file descriptor `fd`, or None at end of file."""
    buf = b""
    while len(buf) < n:
        chunk = os.read(fd, n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data):]


def read_request(fd: int):
    """The next request as a dict, or None when the client closed the pipe."""
    head = read_exact(fd, REQUEST_HEADER.size)
    if head is None:
        return None
    return json.loads(read_exact(fd, REQUEST_HEADER.unpack(head)[0]).decode("utf-8"))


class Engine:
    """libespeak-ng, initialised in this process, collecting synthesised samples through a callback."""

    def __init__(self, lib_path: str, data_parent: str):
        lib = ctypes.CDLL(lib_path)
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                                     ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        self.lib = lib
        self.libc = ctypes.CDLL(None)
        self.sample_rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data_parent.encode(),
                                                 _ESPEAK_INITIALIZE_DONT_EXIT)
        self.chunks = []
        callback_type = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                                         ctypes.c_void_p)
        self._callback = callback_type(self._collect)  # kept alive as long as the library may call it
        if self.sample_rate > 0:
            lib.espeak_SetSynthCallback(self._callback)

    def _collect(self, wav, n, events):
        if n > 0:
            self.chunks.append(ctypes.string_at(wav, 2 * n))
        return 0

    def synthesize(self, req: dict):
        """`(OK, int16 samples)` for one request, or `(FAILED, error text)`."""
        lib = self.lib
        status = lib.espeak_SetVoiceByName(req["voice"].encode())
        if status != 0:
            return FAILED, f"eSpeak has no voice '{req['voice']}' (status {status})".encode()
        for param in ("rate", "pitch", "range"):
            lib.espeak_SetParameter(_PARAMETERS[param], int(req[param]), 0)
        # Breath noise draws from eSpeak's generator and, in Klatt voices, from libc rand().
        lib.espeak_ng_SetRandSeed(int(req["seed"]))
        self.libc.srand(int(req["seed"]) & 0xFFFFFFFF)
        text = req["text"].encode("utf-8") + b"\0"
        status = lib.espeak_Synth(text, len(text), 0, _POS_CHARACTER, 0, _ESPEAK_CHARS_UTF8, None, None)
        if status != 0:
            return FAILED, f"espeak_Synth failed (status {status})".encode()
        lib.espeak_Synchronize()
        return OK, b"".join(self.chunks)


def synthesize_in_fork(engine: Engine, req: dict) -> bytes:
    """Run one request in a fork of this process (a copy-on-write snapshot of the fresh library) and
    return its reply; a child that dies without a whole reply gives an error reply."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            status, payload = engine.synthesize(req)
        except BaseException as e:
            status, payload = FAILED, repr(e).encode()
        write_all(w, encode_reply(status, payload))
        os._exit(0)
    os.close(w)
    parts = []
    while True:
        chunk = os.read(r, 1 << 20)
        if not chunk:
            break
        parts.append(chunk)
    os.close(r)
    _, wait_status = os.waitpid(pid, 0)
    data = b"".join(parts)
    if is_whole_reply(data):
        return data
    return encode_reply(FAILED, f"synthesis process died (wait status {wait_status})".encode())


def serve(lib_path: str, data_parent: str, requests: int = 0, replies: int = 1) -> int:
    """Initialise the library, announce the sample rate, then answer requests until the client closes.

    Returns:
        the exit status: 0, or 1 when the library cannot be initialised.
    """
    engine = Engine(lib_path, data_parent)
    if engine.sample_rate <= 0:
        write_all(replies, encode_reply(FAILED, f"espeak_Initialize failed (status {engine.sample_rate})".encode()))
        return 1
    write_all(replies, encode_reply(OK, struct.pack("<i", engine.sample_rate)))
    while True:
        req = read_request(requests)
        if req is None:
            return 0
        write_all(replies, synthesize_in_fork(engine, req))


if __name__ == "__main__":
    sys.exit(serve(sys.argv[1], sys.argv[2]))
