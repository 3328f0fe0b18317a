"""Wall Street Journal (LDC93S6B WSJ0 + LDC94S13B WSJ1): the data dirs Kaldi's
`egs/wsj/s5/local/wsj_data_prep.sh` + `wsj_format_data.sh` make, from the same `.ndx` lists.

Kaldi takes the disk folders (`11-13.1`, `13-34.1`, ...); here `--wsj0`/`--wsj1` name the folders
that hold them. Utterance ids, speaker ids and transcripts follow Kaldi's helper scripts
(`ndx2flist.pl`, `flist2scp.pl`, `find_transcripts.pl`, `normalize_transcript.pl`); each rule
below names the Kaldi line it reproduces.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path

from asrkit.corpora.common import (
    describe_ids,
    format_duration,
    logger,
    output_exists,
    probe_audio,
    require_dir,
    write_data_dir,
)
from asrkit.errors import AsrkitError, AudioError, DataDirError, FormatError
from asrkit.kaldi.textio import iter_lines

NOISE_WORD = "<NOISE>"  # wsj_data_prep.sh: noiseword="<NOISE>"


@dataclass(frozen=True)
class WsjSet:
    """One data dir: the `.ndx` lists it comes from and Kaldi's per-list fix-ups."""

    name: str
    ndx: tuple[str, ...]           # paths relative to the folder holding the disks
    add_wv1: bool = False          # the nvp test indices omit the extension
    fix_disk_id: bool = False      # the Nov'93 indices name the wrong disk
    drop_401: bool = False         # training lists name speaker 401, which is not on disk 11-2.1
    required: bool = False         # the standard sets: a missing index is an error


# The sets and index files of wsj_data_prep.sh, in its order. test_dev93_5k / test_eval9x_5k are
# made where the corpus has their index. dev_dt_05/dev_dt_20 (found with `find`, not an index)
# are not made: they are the same utterances as test_dev93_5k/test_dev93.
WSJ_SETS: tuple[WsjSet, ...] = (
    # "cat links/11-13.1/wsj0/doc/indices/train/tr_s_wv1.ndx | ndx2flist.pl | sort |
    #  grep -v -i 11-2.1/wsj0/si_tr_s/401 > train_si84.flist"
    WsjSet("train_si84", ("11-13.1/wsj0/doc/indices/train/tr_s_wv1.ndx",), drop_401=True, required=True),
    # "cat links/13-34.1/wsj1/doc/indices/si_tr_s.ndx links/11-13.1/wsj0/doc/indices/train/tr_s_wv1.ndx
    #  | ndx2flist.pl | sort | grep -v -i 11-2.1/wsj0/si_tr_s/401 > train_si284.flist"
    WsjSet("train_si284", ("13-34.1/wsj1/doc/indices/si_tr_s.ndx", "11-13.1/wsj0/doc/indices/train/tr_s_wv1.ndx"),
           drop_401=True, required=True),
    # "cat links/11-13.1/wsj0/doc/indices/test/nvp/si_et_20.ndx | ndx2flist.pl |
    #  awk '{printf("%s.wv1\n", $1)}' | sort > test_eval92.flist"
    WsjSet("test_eval92", ("11-13.1/wsj0/doc/indices/test/nvp/si_et_20.ndx",), add_wv1=True, required=True),
    # same with si_et_05.ndx > test_eval92_5k.flist
    WsjSet("test_eval92_5k", ("11-13.1/wsj0/doc/indices/test/nvp/si_et_05.ndx",), add_wv1=True),
    # "cat links/13-32.1/wsj1/doc/indices/wsj1/eval/h1_p0.ndx | sed s/13_32_1/13_33_1/ | ndx2flist.pl"
    WsjSet("test_eval93", ("13-32.1/wsj1/doc/indices/wsj1/eval/h1_p0.ndx",), fix_disk_id=True),
    WsjSet("test_eval93_5k", ("13-32.1/wsj1/doc/indices/wsj1/eval/h2_p0.ndx",), fix_disk_id=True),
    # "cat links/13-34.1/wsj1/doc/indices/h1_p0.ndx | ndx2flist.pl | sort > test_dev93.flist"
    WsjSet("test_dev93", ("13-34.1/wsj1/doc/indices/h1_p0.ndx",), required=True),
    WsjSet("test_dev93_5k", ("13-34.1/wsj1/doc/indices/h2_p0.ndx",)),
)

# ndx2flist.pl: `$fn =~ m:.+/([0-9\.\-]+)/?$:` names a disk; `tr/-\./__/` makes its id.
_DISK_RE = re.compile(r"^[0-9]+-[0-9]+\.[0-9]+$")
# ndx2flist.pl: `m/^([0-9_]+):\s*(\S+)$/ || die "Could not parse line $_"`
_NDX_LINE_RE = re.compile(r"^([0-9_]+):\s*(\S+)$")
# flist2scp.pl: `m:^\S+/(\w+)\.[wW][vV]1$: || die "Bad line $_"`, id lower-cased.
_WV1_RE = re.compile(r"^(\w+)\.[wW][vV]1$", re.ASCII)
# find_transcripts.pl: dot files are `\S+/(\w{6})00.dot`, one per speaker session.
_DOT_NAME_RE = re.compile(r"^(\w{6})00\.dot$", re.ASCII | re.IGNORECASE)
# find_transcripts.pl: `m:(.+)\((\w{8})\)\s*$: || die "Bad line $_ in dot file"`
_DOT_LINE_RE = re.compile(r"^(.+)\((\w{8})\)\s*$", re.ASCII)
# wsj_data_prep.sh: `grep -v -i 11-2.1/wsj0/si_tr_s/401`
_EXCLUDED_401 = "11-2.1/wsj0/si_tr_s/401"

# normalize_transcript.pl's deletions (`next; # we won't print this word`).
_DELETE_RES = tuple(re.compile(p, re.ASCII) for p in (
    r"^\[<\w+\]$",   # [<door_slam]: a noise in the preceding word
    r"^\[\w+>\]$",   # [door_slam>]: a noise in the next word
    r"\[\w+/\]$",    # [phone_ring/]: start of a phenomenon
    r"\[/\w+\]$",    # [/phone_ring]: end of a phenomenon
))
_NOISE_RE = re.compile(r"\[\w+\]", re.ASCII)           # other noises, e.g. [loud_breath]
_VERBAL_DELETION_RE = re.compile(r"^<([\w']+)>$", re.ASCII)  # <and>: deleted but pronounced
_UPCASE = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def normalize_wsj_transcript(transcript: str, noise_word: str = NOISE_WORD, strip_marks: bool = False) -> str:
    """Normalise one `.dot` transcript exactly as Kaldi's `local/normalize_transcript.pl` does.

    Per word: upper-case (ASCII, `tr:a-z:A-Z:`), remove backslashes, `%PERCENT` -> `PERCENT` and
    `.POINT` -> `POINT`; delete `[<noise]`, `[noise>]`, `[noise/]`, `[/noise]`, `~` and `.`;
    any other word containing `[word]` becomes `noise_word`; `<word>` becomes `word`; `--DASH`
    becomes `-DASH`. Verbalised punctuation (`,COMMA`, `.PERIOD`) stays a word, as do `*` and `:`
    marks (Kaldi keeps them; they become OOVs at lexicon time).

    Args:
        transcript: the text before `(uttid)` on a `.dot` line.
        noise_word: what noise markers become.
        strip_marks: not Kaldi: also remove the characters `*` (mispronounced), `:` (lengthened)
            and `~` from inside words, dropping words left empty.

    Returns:
        the normalised words joined by single spaces (may be empty).
    """
    out = []
    for w in transcript.split():
        w = w.translate(_UPCASE)
        w = w.replace("\\", "")
        if w == "%PERCENT":  # "Normalization for Nov'93 test transcripts."
            w = "PERCENT"
        if w == ".POINT":
            w = "POINT"
        if any(r.search(w) for r in _DELETE_RES) or w in ("~", "."):
            continue
        if _NOISE_RE.search(w):
            out.append(noise_word)
            continue
        m = _VERBAL_DELETION_RE.match(w)
        if m:
            w = m.group(1)
        elif w == "--DASH":  # "the CMU dictionary has it as -DASH"
            w = "-DASH"
        if strip_marks:
            w = w.replace("*", "").replace(":", "").replace("~", "")
            if not w:
                continue
        out.append(w)
    return " ".join(out)


def read_sphere_header(path: str | os.PathLike) -> dict[str, str | int | float]:
    """Read the fields of a NIST SPHERE header (`NIST_1A`, header size, `name -type value` lines).

    Returns:
        `{field: value}`; `-i` fields are int, `-r` float, `-sN` str.

    Raises:
        AudioError: the file cannot be read or does not start with a SPHERE header.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(1024)
            lines = head.split(b"\n", 2)
            if len(lines) < 3 or lines[0].strip() != b"NIST_1A":
                raise AudioError(f"{path}: not a NIST SPHERE file (no NIST_1A header)")
            try:
                size = int(lines[1])
            except ValueError:
                raise AudioError(f"{path}: bad SPHERE header size {lines[1][:20]!r}") from None
            if size > len(head):
                head += f.read(size - len(head))
    except OSError as e:
        raise AudioError(f"{path}: cannot read: {e.strerror or e}") from None
    fields: dict[str, str | int | float] = {}
    body = head[:size].split(b"\n", 2)[2].decode("ascii", errors="replace")
    for line in body.split("\n"):
        if line.strip() == "end_head":
            return fields
        parts = line.split(None, 2)
        if len(parts) < 3:
            continue
        name, kind, value = parts
        try:
            if kind == "-i":
                fields[name] = int(value)
            elif kind == "-r":
                fields[name] = float(value)
            elif kind.startswith("-s"):
                n = int(kind[2:])
                # The value may contain spaces; its length is given by the type.
                fields[name] = line.split(None, 2)[2][:n] if n else ""
        except ValueError:
            raise AudioError(f"{path}: bad SPHERE header field {line.strip()!r}") from None
    raise AudioError(f"{path}: SPHERE header has no end_head")


def find_wsj_disks(*roots: str | os.PathLike) -> dict[str, Path]:
    """Find the WSJ disk folders (`11-13.1`, `13-34.1`, ...) under each root.

    A disk is a folder named like `11-13.1` directly under a root or one level deeper (LDC
    archives unpack to e.g. `csr_1/11-13.1`).

    Returns:
        `{disk_id: folder}` with ids as ndx2flist.pl makes them (`11_13_1`).
    """
    disks: dict[str, Path] = {}
    for root in roots:
        root = Path(root)
        candidates = []
        for child in sorted(root.iterdir()):
            if not child.is_dir():
                continue
            if _DISK_RE.match(child.name):
                candidates.append(child)
            else:
                candidates.extend(g for g in sorted(child.iterdir()) if g.is_dir() and _DISK_RE.match(g.name))
        for disk in candidates:
            disks[disk.name.replace("-", "_").replace(".", "_")] = disk
    return disks


class _CaseInsensitivePaths:
    """Resolve a relative path under a folder, exactly if it exists, else ignoring case.

    Some WSJ copies were upper-cased on the way (ndx2flist.pl has a fix for disk 13-16.1).
    """

    def __init__(self) -> None:
        self._listings: dict[Path, dict[str, str]] = {}

    def resolve(self, base: Path, rel: str) -> Path | None:
        exact = base / rel
        if exact.exists():
            return exact
        cur = base
        for part in rel.split("/"):
            if part in ("", "."):
                continue
            listing = self._listings.get(cur)
            if listing is None:
                try:
                    listing = {name.lower(): name for name in os.listdir(cur)}
                except OSError:
                    return None
                self._listings[cur] = listing
            name = listing.get(part.lower())
            if name is None:
                return None
            cur = cur / name
        return cur


def _read_ndx(ndx: Path, wsj_set: WsjSet, disks: dict[str, Path], paths: _CaseInsensitivePaths,
              entries: dict[str, tuple[str, Path | None]]) -> None:
    """Add `{utt: (where, audio path or None)}` for every line of one index file."""
    for lineno, line in iter_lines(ndx):
        if line.startswith(";") or not line.strip():  # ndx2flist.pl: `if(m/^;/){ next; }`
            continue
        if wsj_set.fix_disk_id:  # wsj_data_prep.sh: `sed s/13_32_1/13_33_1/` (first match per line)
            line = line.replace("13_32_1", "13_33_1", 1)
        m = _NDX_LINE_RE.match(line.strip())
        if m is None:
            raise FormatError(ndx, "expected '<disk_id>:<path>' (e.g. 11_1_1:wsj0/si_tr_s/01i/01ic0201.wv1)", lineno)
        disk_id, rel = m.groups()
        if disk_id not in disks:
            name = disk_id.replace("_", "-", 1).replace("_", ".")
            raise FormatError(ndx, f"disk {name} (id {disk_id}) not found under --wsj0/--wsj1", lineno)
        disk = disks[disk_id]
        if wsj_set.drop_401 and _EXCLUDED_401 in f"{disk.name}/{rel}".lower():
            continue
        if wsj_set.add_wv1:  # awk '{printf("%s.wv1\n", $1)}'
            rel += ".wv1"
        m = _WV1_RE.match(rel.rsplit("/", 1)[-1])
        if m is None:
            raise FormatError(ndx, f"'{rel}' is not a .wv1 file", lineno)
        utt = m.group(1).lower()  # flist2scp.pl: `$id =~ tr/A-Z/a-z/`
        where = f"{ndx}:{lineno}"
        if utt in entries:
            raise FormatError(ndx, f"utterance '{utt}' listed twice (also at {entries[utt][0]})", lineno)
        entries[utt] = (where, paths.resolve(disk, rel))


def _find_dot_files(disks: dict[str, Path]) -> dict[str, Path]:
    """`{speaker-session (6 chars, lower case): .dot file}` over all disks
    (wsj_data_prep.sh: `for x in $*; do find -L $x -iname '*.dot'; done`; a later file wins)."""
    spk2dot: dict[str, Path] = {}
    for disk in sorted(disks.values(), key=lambda p: p.name):
        for dirpath, dirnames, filenames in os.walk(disk, followlinks=True):
            dirnames.sort()
            for name in sorted(filenames):
                if not name.lower().endswith(".dot"):
                    continue
                m = _DOT_NAME_RE.match(name)
                if m is None:
                    logger.warning("%s: not named <6 chars>00.dot; ignored", Path(dirpath) / name)
                    continue
                spk2dot[m.group(1).lower()] = Path(dirpath) / name
    return spk2dot


def _read_dot(path: Path) -> dict[str, str]:
    """`{utt: raw transcript}` from one `.dot` file (find_transcripts.pl)."""
    utt2trans: dict[str, str] = {}
    for lineno, line in iter_lines(path):
        if not line.strip():
            continue
        m = _DOT_LINE_RE.match(line)
        if m is None:
            raise FormatError(path, "expected '<transcript> (<8-character utterance id>)'", lineno)
        utt2trans[m.group(2).lower()] = m.group(1)
    return utt2trans


def prepare_wsj(wsj0: str | os.PathLike, wsj1: str | os.PathLike, out_dir: str | os.PathLike, *,
                sph2pipe: str = "sph2pipe", sets: list[str] | None = None, strip_marks: bool = False,
                overwrite: bool = False, num_workers: int = 4) -> list[Path]:
    """Prepare the WSJ data dirs of Kaldi's `wsj_data_prep.sh` + `wsj_format_data.sh`.

    Writes `<out_dir>/<set>/{wav.scp,text,utt2spk,spk2utt,utt2lang,utt2dur}` for `train_si84`,
    `train_si284`, `test_eval92`, `test_dev93` and, where the corpus has their index,
    `test_eval92_5k`, `test_eval93`, `test_eval93_5k`, `test_dev93_5k`. Utterance ids are the
    lower-cased file names (`4k0c0301`), speakers their first three characters, `utt2lang` is
    `en`. Shorten-compressed `.wv1` files go into `wav.scp` as `sph2pipe -f wav <file> |`, plain
    PCM SPHERE files as paths (asrkit reads those itself).

    `train_si84` comes from `tr_s_wv1.ndx` as in wsj_data_prep.sh; Kaldi's run.sh instead takes
    the first 7138 utterances of train_si284, which is the same list on the real corpus.

    Args:
        wsj0, wsj1: folders holding the WSJ0 / WSJ1 disk folders (`11-13.1`, `13-34.1`, ...).
        out_dir: where the data dirs go (e.g. `data`).
        sph2pipe: the sph2pipe program (name on PATH or path); needed only for shorten files.
        sets: only these sets (default: all of `WSJ_SETS` the corpus has).
        strip_marks: also remove `*`, `:`, `~` from words (not Kaldi; see normalize_wsj_transcript).
        overwrite: replace existing data dirs (otherwise they are kept and skipped).
        num_workers: threads reading audio headers.

    Returns:
        the data dirs written or kept, in `WSJ_SETS` order.

    Raises:
        AsrkitError: a missing folder or index, a bad index or `.dot` line, listed audio that is
            not on disk, audio without transcript, unreadable audio, or sph2pipe needed but absent.
    """
    roots = [require_dir(wsj0, "WSJ0 folder (--wsj0)", "<wsj0>/11-13.1/wsj0/doc/indices/..., <wsj0>/11-2.1/wsj0/si_tr_s/..."),
             require_dir(wsj1, "WSJ1 folder (--wsj1)", "<wsj1>/13-34.1/wsj1/doc/indices/..., <wsj1>/13-16.1/wsj1/si_dt_20/...")]
    disks = find_wsj_disks(*roots)
    # wsj_data_prep.sh: "Spot check of command line arguments failed" unless the index disks exist.
    for disk_id, root, flag in (("11_13_1", roots[0], "--wsj0"), ("13_34_1", roots[1], "--wsj1")):
        if disk_id not in disks:
            name = disk_id.replace("_", "-", 1).replace("_", ".")
            raise AsrkitError(f"{root}: no WSJ disk folder {name} here or one level down ({flag} must hold the "
                              f"LDC disk folders such as {name}/)")
    known = {s.name: s for s in WSJ_SETS}
    if sets is not None:
        unknown = [s for s in sets if s not in known]
        if unknown:
            raise AsrkitError(f"unknown WSJ set(s) {', '.join(unknown)}; choose from {', '.join(known)}")
    chosen = [s for s in WSJ_SETS if sets is None or s.name in sets]
    paths = _CaseInsensitivePaths()
    out_dir = Path(out_dir)
    spk2dot: dict[str, Path] | None = None
    dot_cache: dict[str, dict[str, str]] = {}
    done: list[Path] = []
    for wsj_set in chosen:
        dest = out_dir / wsj_set.name
        ndx_files = []
        for rel in wsj_set.ndx:
            disk_name, rest = rel.split("/", 1)
            disk_id = disk_name.replace("-", "_").replace(".", "_")
            ndx = paths.resolve(disks[disk_id], rest) if disk_id in disks else None
            if ndx is None or not ndx.is_file():
                ndx_files = None
                missing = f"{disks[disk_id] / rest}" if disk_id in disks else f"disk {disk_name}"
                break
            ndx_files.append(ndx)
        if ndx_files is None:
            if wsj_set.required or sets is not None:  # asked for by name: its absence is an error
                raise AsrkitError(f"{missing}: index for {wsj_set.name} does not exist")
            logger.info("%s: %s not found; skipping this set", wsj_set.name, missing)
            continue
        if output_exists(dest, overwrite):
            done.append(dest)
            continue
        entries: dict[str, tuple[str, Path | None]] = {}
        for ndx in ndx_files:
            _read_ndx(ndx, wsj_set, disks, paths, entries)
        if not entries:
            raise DataDirError(f"{wsj_set.name}: the index lists no utterances ({', '.join(map(str, ndx_files))})")
        where = f"{wsj_set.name} ({', '.join(str(p) for p in ndx_files)})"
        missing_audio = [u for u, (_, p) in entries.items() if p is None]
        if missing_audio:
            raise DataDirError(f"{where}: listed audio not on disk: {describe_ids(missing_audio)}")
        if spk2dot is None:
            spk2dot = _find_dot_files(disks)
        text: dict[str, str] = {}
        for utt in entries:
            session = utt[:6]
            if session not in dot_cache:
                dot_cache[session] = _read_dot(spk2dot[session]) if session in spk2dot else {}
            raw = dot_cache[session].get(utt)
            if raw is not None:
                text[utt] = normalize_wsj_transcript(raw, strip_marks=strip_marks)
        no_text = [u for u in entries if u not in text]
        if no_text:
            raise DataDirError(f"{where}: audio without transcript (no line in a <session>00.dot file): "
                               f"{describe_ids(no_text)}")
        audio = {u: p for u, (_, p) in entries.items()}
        wav_scp, utt2dur = _wav_entries(audio, sph2pipe, num_workers)
        tables = {
            "wav.scp": wav_scp,
            "text": text,
            "utt2spk": {u: u[:3] for u in entries},  # wsj_data_prep.sh: `m:^...:; print "$_ $&\n"`
            "utt2lang": {u: "en" for u in entries},
            "utt2dur": utt2dur,
        }
        done.append(write_data_dir(dest, tables, overwrite=overwrite))
    return done


def _wav_entries(audio: dict[str, Path], sph2pipe: str, num_workers: int) -> tuple[dict[str, str], dict[str, str]]:
    """`wav.scp` values and `utt2dur` for SPHERE files: shorten ones through sph2pipe, PCM ones as paths."""
    headers = {u: read_sphere_header(p) for u, p in audio.items()}
    shorten = {u for u, h in headers.items() if "shorten" in str(h.get("sample_coding", "")).lower()}
    wav_scp: dict[str, str] = {}
    utt2dur: dict[str, str] = {}
    if shorten:
        program = shutil.which(sph2pipe)
        if program is None:
            example = audio[min(shorten)]
            raise AsrkitError(
                f"{len(shorten)} WSJ file(s) are shorten-compressed SPHERE (e.g. {example}) and need sph2pipe, "
                f"but '{sph2pipe}' was not found; install sph2pipe (Kaldi: tools/extras/install_sph2pipe.sh) "
                "and put it on PATH or pass --sph2pipe /path/to/sph2pipe")
        for u in shorten:
            h = headers[u]
            count, rate = h.get("sample_count"), h.get("sample_rate")
            if not isinstance(count, int) or not isinstance(rate, int) or count <= 0 or rate <= 0:
                raise AudioError(f"{audio[u]}: SPHERE header lacks a positive sample_count/sample_rate")
            # wsj_data_prep.sh: `printf("%s '$sph2pipe' -f wav %s |\n", $1, $2)`
            wav_scp[u] = f"{shlex.quote(program)} -f wav {shlex.quote(os.path.abspath(audio[u]))} |"
            utt2dur[u] = format_duration(count / rate)
    pcm = {u: p for u, p in audio.items() if u not in shorten}
    for u, info in probe_audio(pcm, num_workers, desc="reading WSJ headers").items():
        wav_scp[u] = os.path.abspath(pcm[u])
        utt2dur[u] = format_duration(info.duration)
    return wav_scp, utt2dur
