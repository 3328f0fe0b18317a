"""A small wrapper over eSpeak NG: int16 speech for a text, a language, a voice variant, rate and pitch.

The preferred backend is the libespeak-ng shipped by the `espeakng-loader` wheel (library and voice
data, no root needed), driven through ctypes in synchronous mode with a synth callback. A system
`espeak-ng` binary is the fallback. libespeak-ng keeps global state, so one process holds at most
one initialised library; parallel synthesis uses processes, never threads.

The library is not stateless between utterances either: its wave generator carries phase, pitch
flutter position and echo buffers from one `espeak_Synth` call to the next, so the same text comes
out a few samples longer or shorter depending on what was said before. `EspeakLibrary.synthesize`
therefore runs the library in a small server process (asrkit.corpora.espeak_server) that
initialises it once and synthesises each utterance in a fork of itself (a copy-on-write snapshot
of the fresh library): the output depends only on the arguments, which is what makes a corpus
byte-identical whatever the order of utterances or the number of workers.
"""

from __future__ import annotations

import ctypes
import io
import re
import shutil
import struct
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from asrkit.corpora import espeak_server
from asrkit.errors import AsrkitError, ConfigError

#: Voice variants (files in espeak-ng-data/voices/!v) that sound like distinct, intelligible speakers.
#: Gender is what the variant file declares (klatt variants declare none; they are synthesised with
#: the Klatt formant model and sound different from every other variant).
VARIANT_GENDER: dict[str, str] = {
    **{f"m{i}": "m" for i in range(1, 9)},
    **{f"f{i}": "f" for i in range(1, 6)},
    "klatt": "m", "klatt2": "m", "klatt3": "m", "klatt4": "f", "klatt6": "m",
    "anika": "f", "andy": "m",
}

_VARIANT_FILES = {"andy": "Andy"}  # variant files whose name is not lower case


def variant_file_name(variant: str) -> str:
    """The file name in espeak-ng-data/voices/!v of one of `VARIANT_GENDER`'s variants."""
    return _VARIANT_FILES.get(variant, variant)


@dataclass(frozen=True)
class Voice:
    """The settings of one utterance's voice.

    Attributes:
        lang: an eSpeak language code (`en`, `en-us`, `de`, `pt-br`, ...).
        variant: a voice variant (`m3`, `f2`, `klatt`, ...), or "" for the language's default voice.
        rate: speaking rate in words per minute (eSpeak accepts 80..450; default 175).
        pitch: base pitch 0..99 (default 50).
        pitch_range: pitch range 0..99 (0 is monotone; default 50).
    """

    lang: str
    variant: str = ""
    rate: int = 175
    pitch: int = 50
    pitch_range: int = 50

    @property
    def name(self) -> str:
        """The name eSpeak takes for this voice: `<lang>` or `<lang>+<variant file>`."""
        return f"{self.lang}+{variant_file_name(self.variant)}" if self.variant else self.lang


def _loader():
    try:
        import espeakng_loader
    except ImportError:
        return None
    return espeakng_loader


def library_paths() -> tuple[str, str] | None:
    """`(libespeak-ng path, espeak-ng-data path)` from the espeakng-loader package, or None if absent."""
    loader = _loader()
    if loader is None:
        return None
    lib, data = loader.get_library_path(), str(Path(loader.get_library_path()).parent / "espeak-ng-data")
    if not (Path(lib).exists() and Path(data).is_dir()):
        return None
    return lib, data


def choose_backend(backend: str = "auto") -> str:
    """Resolve `backend` ("auto", "library" or "binary") to the one that will be used.

    Raises:
        ConfigError: an unknown backend name, or the requested backend is not installed.
        AsrkitError: "auto" and neither espeakng-loader nor an `espeak-ng` binary is available.
    """
    if backend not in ("auto", "library", "binary"):
        raise ConfigError(f"unknown eSpeak backend '{backend}' (choose auto, library or binary)")
    have_library = library_paths() is not None
    have_binary = shutil.which("espeak-ng") is not None
    if backend == "library" and not have_library:
        raise ConfigError("eSpeak backend 'library' needs the espeakng-loader package (pip install espeakng-loader)")
    if backend == "binary" and not have_binary:
        raise ConfigError("eSpeak backend 'binary' needs an espeak-ng program on PATH (apt-get install espeak-ng)")
    if backend != "auto":
        return backend
    if have_library:
        return "library"
    if have_binary:
        return "binary"
    raise AsrkitError("eSpeak NG not found: pip install espeakng-loader (preferred), or install an espeak-ng program")


def available_languages(backend: str = "auto") -> list[str]:
    """Every language code eSpeak NG can speak with this backend, sorted.

    The library backend reads the voice files (`language <code>` lines under espeak-ng-data/lang)
    without initialising the library, so a parent process stays free of its global state.
    """
    backend = choose_backend(backend)
    if backend == "library":
        _, data = library_paths()
        return _languages_from_voice_files(Path(data) / "lang")
    out = subprocess.run(["espeak-ng", "--voices"], capture_output=True, text=True, check=True).stdout
    # Columns: Pty Language Age/Gender VoiceName File Other-Languages, the last as `(en 2)` groups.
    codes: set[str] = set()
    for line in out.splitlines()[1:]:
        fields = line.split()
        if len(fields) > 1:
            codes.add(fields[1].lower())
            codes.update(m.lower() for m in re.findall(r"\((\S+) \d+\)", line))
    return sorted(codes)


def _languages_from_voice_files(lang_dir: Path) -> list[str]:
    codes: set[str] = set()
    for path in lang_dir.rglob("*"):
        if not path.is_file():
            continue
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            fields = line.split()
            if len(fields) >= 2 and fields[0] == "language":
                codes.add(fields[1].lower())
    return sorted(codes)


def available_variants(backend: str = "auto") -> list[str]:
    """The variants of `VARIANT_GENDER` that this backend's voice data has."""
    backend = choose_backend(backend)
    if backend == "library":
        vdir = Path(library_paths()[1]) / "voices" / "!v"
        return [v for v in VARIANT_GENDER if (vdir / variant_file_name(v)).is_file()]
    out = subprocess.run(["espeak-ng", "--voices=variant"], capture_output=True, text=True, check=True).stdout
    rows = [line.split() for line in out.splitlines()[1:]]
    files = {f[4].rsplit("/", 1)[-1].lower() for f in rows if len(f) > 4}
    names = {f[3].lower() for f in rows if len(f) > 3}
    return [v for v in VARIANT_GENDER if v in files or v in names]


def backend_version(backend: str = "auto") -> str:
    """A string naming the backend and eSpeak NG version, e.g. `library 1.52.0` (recorded in stamps)."""
    backend = choose_backend(backend)
    if backend == "library":
        lib = ctypes.CDLL(library_paths()[0])  # espeak_Info needs no initialisation
        lib.espeak_Info.restype = ctypes.c_char_p
        lib.espeak_Info.argtypes = [ctypes.c_void_p]
        return f"library {lib.espeak_Info(None).decode()}"
    out = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True, check=True).stdout
    m = re.search(r"(\d+\.\d+[.\d]*)", out)
    return f"binary {m.group(1) if m else out.strip()}"


class EspeakLibrary:
    """libespeak-ng from espeakng-loader, initialised once in a small server process of its own.

    Each `synthesize` call runs in a fresh fork of that server, so it starts from the freshly
    initialised library state (see the module docstring) and the caller's process never holds
    eSpeak's global state: several instances may coexist. `close()` (or garbage collection) stops
    the server.

    Raises:
        AsrkitError: the library cannot be loaded or initialised.
    """

    def __init__(self) -> None:
        paths = library_paths()
        if paths is None:
            raise AsrkitError("espeakng-loader is not installed (pip install espeakng-loader)")
        lib_path, data_path = paths
        # The server runs as `python -S -c SOURCE`: no site packages, nothing but the stdlib mapped.
        # The path given to espeak_Initialize is the folder that *contains* espeak-ng-data.
        source = Path(espeak_server.__file__).read_text(encoding="utf-8")
        self._proc = subprocess.Popen([sys.executable, "-S", "-c", source, lib_path, str(Path(data_path).parent)],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        status, payload = self._read_reply()
        if status != espeak_server.OK:
            self.close()
            raise AsrkitError(f"{lib_path}: cannot start libespeak-ng: {payload.decode('utf-8', 'replace')}")
        self.sample_rate: int = struct.unpack("<i", payload)[0]

    def _read_reply(self) -> tuple[int, bytes]:
        head = self._proc.stdout.read(espeak_server.REPLY_HEADER.size)
        if len(head) != espeak_server.REPLY_HEADER.size:
            err = self._proc.stderr.read().decode("utf-8", "replace").strip() if self._proc.poll() is not None else ""
            raise AsrkitError(f"eSpeak server stopped unexpectedly: {err or 'no reply'}")
        status, length = espeak_server.REPLY_HEADER.unpack(head)
        payload = self._proc.stdout.read(length)
        if len(payload) != length:
            raise AsrkitError("eSpeak server stopped in the middle of a reply")
        return status, payload

    def synthesize(self, text: str, voice: Voice, seed: int = 0) -> np.ndarray:
        """Speak `text` with `voice`; returns int16 samples, shape `(num_samples,)`, at `sample_rate`.

        The result depends only on the arguments (each call runs in a fresh fork of the server).

        Raises:
            AsrkitError: the voice is unknown or synthesis failed.
        """
        if self._proc is None:
            raise AsrkitError("eSpeak library closed")
        self._proc.stdin.write(espeak_server.encode_request(text, voice.name, voice.rate, voice.pitch,
                                                            voice.pitch_range, seed))
        self._proc.stdin.flush()
        status, payload = self._read_reply()
        if status != espeak_server.OK:
            raise AsrkitError(f"eSpeak failed for voice {voice.name} and text {text!r}: "
                              f"{payload.decode('utf-8', 'replace')}")
        return np.frombuffer(payload, dtype="<i2").astype(np.int16)

    def close(self) -> None:
        """Stop the server process."""
        proc, self._proc = getattr(self, "_proc", None), None
        if proc is not None:
            for f in (proc.stdin, proc.stdout, proc.stderr):
                f.close()
            proc.wait()

    def __del__(self) -> None:
        self.close()


class EspeakBinary:
    """The fallback: a system `espeak-ng` program, one process per utterance (so no state carries over)."""

    def __init__(self) -> None:
        self.program = shutil.which("espeak-ng")
        if self.program is None:
            raise AsrkitError("no espeak-ng program on PATH")
        self.sample_rate = 22050

    def synthesize(self, text: str, voice: Voice, seed: int = 0) -> np.ndarray:
        """Speak `text`; returns int16 samples, shape `(num_samples,)`, at `sample_rate` (22050 Hz).

        `seed` is unused: a fresh process always starts from the same random state. The pitch
        range is not applied: the espeak-ng program has no option for it.

        Raises:
            AsrkitError: espeak-ng failed or printed no audio.
        """
        import soundfile as sf

        cmd = [self.program, "-v", voice.name, "-s", str(voice.rate), "-p", str(voice.pitch),
               "-b", "1", "--stdout", text]
        proc = subprocess.run(cmd, capture_output=True)
        if proc.returncode != 0 or not proc.stdout:
            err = proc.stderr.decode("utf-8", "replace").strip()
            raise AsrkitError(f"espeak-ng failed ({proc.returncode}) for voice {voice.name}: {err}")
        samples, rate = sf.read(io.BytesIO(proc.stdout), dtype="int16")
        self.sample_rate = rate
        return np.asarray(samples, dtype=np.int16).reshape(-1)


def open_engine(backend: str = "auto") -> EspeakLibrary | EspeakBinary:
    """Create the synthesiser for `backend` ("auto", "library", "binary") in this process."""
    backend = choose_backend(backend)
    return EspeakLibrary() if backend == "library" else EspeakBinary()

