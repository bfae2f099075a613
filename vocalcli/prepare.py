"""Songs on disk -> catalog rows + log-mels: `prepare_file` -> `prepare_files` (load once, loop, progress).

Layered like torchcrepe's predict -> predict_from_file -> predict_from_files_to_files. Every song gets a
catalog row whatever happens to it, so a bad file is reported, never fatal. Finished songs are skipped
on rerun when the source file (size, mtime) and the settings that shape the mel are unchanged.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import sys
import threading
import time
import unicodedata
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vocalcli import catalog
from vocalcli import project as project_mod
from vocalcli.audio import AUDIO_EXTENSIONS, warm_librosa_cache
from vocalcli.config import AudioConfig, Config
from vocalcli.errors import AudioError, ConfigError, VocalError
from vocalcli.pitch import Track

PIPELINE_VERSION = 3  # 2: fluctuation-weighted tracker; 3: pitch from the separator's own track
"""Bump when the meaning of a stored mel changes: every song is then redone on the next prepare."""

FINAL = {"ok", "too_short", "silent", "duplicate"}
"""Statuses that are a property of the file itself (or say it is already in the library); anything else is
a failure (exit code 1)."""


@dataclass(frozen=True)
class SongFile:
    singer: str
    source: str  # path relative to the songs directory, '/'-separated
    path: str  # absolute path

    @property
    def song_id(self) -> str:
        return song_id(self.singer, self.source)


def _slug(text: str, limit: int) -> str:
    ascii_ = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^A-Za-z0-9]+", "-", ascii_).strip("-").lower()
    return slug[:limit] or "x"


def song_id(singer: str, source: str) -> str:
    """Stable, filesystem-safe id: readable slug + 8 hex of the exact relative path (so 'a b' != 'a_b').

    Only [a-z0-9-_] characters: safe as a file name on every OS, whatever unicode, spaces or '..' the
    source path holds.
    """
    stem = source.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    digest = hashlib.sha1(source.encode("utf-8", "surrogateescape")).hexdigest()[:8]  # undecodable bytes too
    return f"{_slug(singer, 40)}_{_slug(stem, 60)}_{digest}"


LOSSLESS = (".flac", ".wav", ".aiff", ".aif")
"""When one song is in a folder in several formats, the first of these (else the first by name) is used."""

FOLDER_HINT = "expected SONGS_DIR/<singer>/<song>.<ext>"


def _printable(name: str) -> str:
    """A path with the bytes that are not UTF-8 shown as \\xNN (os.scandir keeps them as surrogates)."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _is_utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def scan(songs_dir: Path) -> tuple[list[SongFile], list[dict[str, str]]]:
    """Every audio file under ``songs_dir/<singer>/`` (any depth, sorted), and what could not be used.

    The second list holds catalog rows (singer, source, status, reason) for what is not a song to
    prepare, so nothing is skipped silently: audio directly in SONGS_DIR (``no_singer``), names that are
    not UTF-8 (``bad_name``), unreadable folders and broken symlinks (``unreadable``), and the same
    folder or file reached twice, by a symlink (``rootloop -> .``), a hard link, or one song saved in
    two formats (``duplicate``, not a failure).
    """
    songs_dir = Path(songs_dir)
    if not songs_dir.exists():
        raise VocalError(f"songs directory {songs_dir} does not exist; {FOLDER_HINT}")
    if not songs_dir.is_dir():
        raise VocalError(f"{songs_dir} is a file, not a folder: 'vocal prepare' takes the folder that holds one "
                         f"folder per singer ({FOLDER_HINT}); for one song use 'vocal recommend FILE'")
    root = os.stat(songs_dir)
    above = {(root.st_dev, root.st_ino)}
    for parent in songs_dir.resolve().parents:
        st = os.stat(parent)
        above.add((st.st_dev, st.st_ino))
    seen_dirs: dict[tuple[int, int], str] = {}
    candidates: list[tuple[str, str, str, tuple[int, int], bool]] = []  # singer, source, path, inode, symlink?
    songs: list[SongFile] = []
    problems: list[dict[str, str]] = []

    def problem(singer: str, source: str, status: str, reason: str) -> None:
        problems.append({"singer": _printable(singer), "source": _printable(source), "status": status,
                         "reason": reason})

    def entries(path: str, singer: str, source: str) -> list[os.DirEntry] | None:
        try:
            with os.scandir(path) as it:
                return sorted((e for e in it if not e.name.startswith(".")), key=lambda e: e.name)
        except OSError as e:
            problem(singer, source, "unreadable", f"cannot read this folder ({e.strerror}); fix its permissions")
            return None

    def folder(path: str, singer: str, source: str) -> None:
        st = os.stat(path)
        key = (st.st_dev, st.st_ino)
        if key in above:
            problem(singer, source, "duplicate", "a symlink to SONGS_DIR or a folder above it; not read (it would "
                    "add the library again)")
            return
        if key in seen_dirs:
            problem(singer, source, "duplicate", f"the same folder as {_printable(seen_dirs[key])}; not read twice")
            return
        seen_dirs[key] = source
        listing = entries(path, singer, source)
        if listing is None:
            return
        audio: list[os.DirEntry] = []
        for e in listing:
            rel = f"{source}/{e.name}"
            if not _is_utf8(e.name):
                problem(singer, rel, "bad_name", "the name is not valid UTF-8 text; rename it (e.g. convmv -f "
                        "latin1 -t utf-8)")
            elif _entry_is_dir(e):
                folder(e.path, singer, rel)
            elif _entry_is_file(e):
                if e.name.lower().endswith(AUDIO_EXTENSIONS):
                    audio.append(e)
            elif e.is_symlink():
                problem(singer, rel, "unreadable", f"a broken symlink (to {_printable(os.readlink(e.path))}); "
                        "fix or delete it")
        by_stem: dict[str, list[os.DirEntry]] = {}
        for e in audio:
            by_stem.setdefault(e.name.rsplit(".", 1)[0].lower(), []).append(e)
        for e in audio:
            rel = f"{source}/{e.name}"
            group = by_stem[e.name.rsplit(".", 1)[0].lower()]
            first = min(group, key=lambda x: (_format_rank(x.name), x.name))
            if e is not first:
                problem(singer, rel, "duplicate", f"the same song as {first.name} in another format; only "
                        f"{first.name} is used (rename this file if it is a different song)")
                continue
            st = os.stat(e.path)
            candidates.append((singer, rel, e.path, (st.st_dev, st.st_ino), e.is_symlink()))

    try:
        top = sorted((e for e in os.scandir(songs_dir) if not e.name.startswith(".")), key=lambda e: e.name)
    except OSError as e:
        raise VocalError(f"cannot read songs directory {songs_dir} ({e.strerror}); fix its permissions") from None
    for e in top:
        if not _is_utf8(e.name):
            problem("", e.name, "bad_name", "the name is not valid UTF-8 text; rename it (e.g. convmv -f latin1 "
                    "-t utf-8)")
        elif _entry_is_dir(e):
            folder(e.path, e.name, e.name)
        elif _entry_is_file(e) and e.name.lower().endswith(AUDIO_EXTENSIONS):
            problem("", e.name, "no_singer", f"audio directly in SONGS_DIR has no singer; move it into "
                    f"SONGS_DIR/<singer>/ ({FOLDER_HINT})")
        elif e.is_symlink() and not _entry_is_file(e):
            problem(e.name, e.name, "unreadable", f"a broken symlink (to {_printable(os.readlink(e.path))}); "
                    "fix or delete it")
    # one file reached twice (symlink, hard link): the real file, else the first one, is the song
    keep: dict[tuple[int, int], str] = {}
    for c in sorted(candidates, key=lambda c: c[4]):  # stable sort: real files first, then symlinks
        keep.setdefault(c[3], c[1])
    for singer, rel, path, key, _ in candidates:
        if keep[key] == rel:
            songs.append(SongFile(singer, rel, str(Path(path).resolve())))
        else:
            problem(singer, rel, "duplicate", f"the same file as {keep[key]}; used once")
    return songs, problems


def _entry_is_dir(e: os.DirEntry) -> bool:
    try:
        return e.is_dir()  # follows symlinks; False for broken ones
    except OSError:  # a symlink loop (ELOOP)
        return False


def _entry_is_file(e: os.DirEntry) -> bool:
    try:
        return e.is_file()
    except OSError:
        return False


def _format_rank(name: str) -> int:
    ext = "." + name.rsplit(".", 1)[-1].lower()
    return LOSSLESS.index(ext) if ext in LOSSLESS else len(LOSSLESS)


def discover(songs_dir: Path) -> list[SongFile]:
    """Every audio file under ``songs_dir/<singer>/`` (any depth), sorted for determinism."""
    return scan(songs_dir)[0]


DEMUCS_INPUT = "demucs-44100x2"
"""demucs hears the window at its own rate and channels (before: the 16 kHz mono mix upsampled): a mel
made the old way is redone."""


def settings_hash(cfg: AudioConfig, separation: str, silence_db: float) -> str:
    """What shapes a stored mel; a change makes prepare redo the song."""
    separation = DEMUCS_INPUT if separation == "demucs" else separation
    blob = json.dumps([asdict(cfg), separation, silence_db, PIPELINE_VERSION], sort_keys=True)
    return hashlib.sha1(blob.encode()).hexdigest()[:12]


def resolve_separation(method: str, device_type: str = "cpu", n_songs: int = 0, window_s: float = 120.0,
                       log: Callable[[str], None] | None = None) -> str:
    """The method to run: 'auto' -> 'demucs' when its package and weights are already here (it never
    downloads) and, on a CPU, the ``n_songs`` windows would take under an hour; else 'harmonic'.
    ``log`` is told why and how long. An explicit 'demucs' fetches missing weights with demucs' own
    loader (saying what and where)."""
    if method in ("none", "harmonic", "repet"):
        return method
    from vocalcli import separation

    say = log or (lambda _m: None)
    if method == "auto":
        ok, _ = separation.demucs_available()
        if not ok:
            return "harmonic"
        if device_type == "cpu" and n_songs:
            est = n_songs * window_s / separation.DEMUCS_CPU_X_REALTIME
            if est > separation.DEMUCS_CPU_AUTO_LIMIT_S:
                say(f"auto: demucs on this CPU would take ~{_hours(est)} for {n_songs} songs (~"
                    f"{separation.DEMUCS_CPU_X_REALTIME:g}x realtime); using the built-in harmonic separator. "
                    "Pass --separate demucs to wait for it, or --gpu")
                return "harmonic"
            say(f"auto: demucs on the CPU, ~{_hours(est)} for {n_songs} songs")
        return "demucs"
    if method == "demucs":
        ok, why = separation.demucs_available()
        if not ok and "not installed" in why:
            raise ConfigError(f"--separate demucs is not usable here: {why}")
        if not ok:
            separation.fetch_demucs(say)
    return method


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 5400 else f"{seconds / 60:.0f} min"


@dataclass(frozen=True)
class Job:
    song: SongFile
    mel_path: str
    audio: AudioConfig
    separation: str
    silence_db: float
    residue_path: str = ""  # where to store the residue mel when separation runs; "" = do not
    pitch_path: str = ""  # where to store the f0 track at the mel's frames (vocalcli/pitch_profile.py)


def _decode_checked(job: Job) -> tuple[dict[str, Any], Any, np.ndarray | None]:
    """(row, decoded window, its 16 kHz mono mix) -- or (row with its final status, None, None) when the
    file cannot be used (decode error, too short, silent)."""
    from vocalcli import audio

    cfg = job.audio
    row: dict[str, Any] = {"status": "ok", "reason": "", "mel": "", "duration_s": ""}
    try:
        dec = audio.decode(job.song.path, cfg.start_s, cfg.end_s)
    except AudioError as e:
        return {**row, "status": "decode_error", "reason": str(e)}, None, None
    except Exception as e:  # a decoder bug must not stop a 10,000-song run
        return {**row, "status": "decode_error", "reason": f"{type(e).__name__}: {e}"}, None, None
    row["duration_s"] = f"{dec.duration_s:.3f}"
    want = round((cfg.end_s - cfg.start_s) * dec.sample_rate)
    got = dec.samples.shape[1]
    if got < want - max(1, dec.sample_rate // 100):  # 10 ms slack for codec priming/padding
        decoded_s = cfg.start_s + got / dec.sample_rate
        if dec.duration_s >= cfg.end_s - 0.01:
            return {**row, "status": "decode_error",
                    "reason": f"truncated or corrupt: header says {dec.duration_s:.1f} s, decoded {decoded_s:.1f} s"
                    }, None, None
        return {**row, "status": "too_short",
                "reason": f"{dec.duration_s:.1f} s < {cfg.end_s:g} s needed for the window"}, None, None
    y = audio.resample(audio.to_mono(dec.samples), dec.sample_rate, cfg.sample_rate)
    if not np.all(np.isfinite(y)):
        return {**row, "status": "decode_error", "reason": "decoded samples are NaN/inf"}, None, None
    level = audio.rms_db(y)
    if level < job.silence_db:
        return ({**row, "status": "silent", "reason": f"window RMS {level:.1f} dBFS < {job.silence_db:g} dBFS"},
                None, None)
    return row, dec, y


def _finish(job: Job, row: dict[str, Any], vocal: np.ndarray, used: str, pitch: dict[str, float],
            track: Track, mix: np.ndarray | None = None) -> dict[str, Any]:
    """Mel of the vocal estimate -> mels/<song_id>.npy (float16), its f0 track on the mel's frames ->
    pitch/<song_id>.npy; with ``mix`` (the 16 kHz mono window) and a residue path, the residue mel too;
    the row with its pitch statistics."""
    from vocalcli import audio

    mel = audio.fit_frames(audio.log_mel(vocal, job.audio), job.audio.n_frames)
    if job.pitch_path:  # written before the mel: a row is only made once its mel is there
        project_mod.save_npy(Path(job.pitch_path), track.at_frames(1.0 / job.audio.frame_rate, mel.shape[1]))
    residue = ""
    if job.residue_path and used != "none" and mix is not None:
        # what MR removal took away, exactly (time domain, before the mel): the band the timbre encoder
        # learns to ignore. One more mel, ~3 % of the song's prepare time.
        n = min(mix.size, vocal.size)
        res = audio.fit_frames(audio.log_mel(mix[:n] - vocal[:n], job.audio), job.audio.n_frames)
        project_mod.save_npy(Path(job.residue_path), res.astype(np.float16))
        residue = job.residue_path
    project_mod.save_npy(Path(job.mel_path), mel.astype(np.float16))
    return {**row, "separation": used, "residue": residue, "pitch": job.pitch_path,
            **{k: f"{v:.1f}" for k, v in pitch.items()}}


def prepare_file(job: Job) -> dict[str, Any]:
    """Decode the window, downmix, resample, separate, mel -> save. Returns the catalog fields it knows.

    Never raises for bad audio: the failure becomes the row's status and reason.
    """
    row, dec, y = _decode_checked(job)
    if dec is None:
        return row
    from vocalcli.pitch import separate_with_pitch

    try:
        vocal, used, pitch, track = separate_with_pitch(y, job.audio.sample_rate, job.separation)
    except VocalError as e:
        return {**row, "status": "separation_error", "reason": str(e)}
    return _finish(job, row, vocal, used, pitch, track, y)


def _decode_for_model(args: tuple[Job, int, int]) -> tuple[dict[str, Any], np.ndarray | None]:
    """Stage 1 of demucs prepare (a worker): the checked window at the model's rate and channels."""
    from vocalcli.separation import to_model_input

    job, model_sr, channels = args
    row, dec, _ = _decode_checked(job)
    if dec is None:
        return row, None
    x = to_model_input(dec.samples, dec.sample_rate, model_sr, channels)
    n = round((job.audio.end_s - job.audio.start_s) * model_sr)  # every window the same length: one batch
    return row, np.pad(x, ((0, 0), (0, max(0, n - x.shape[1]))), mode="edge")[:, :n]


def _finish_separated(args: tuple[Job, dict[str, Any], np.ndarray, np.ndarray, int]) -> dict[str, Any]:
    """Stage 3 of demucs prepare (a worker): pitch statistics of the vocal stem, mel (and the residue's:
    the model's input window downmixed to the mel's rate, minus the stem), save."""
    from vocalcli import audio
    from vocalcli.pitch import track_of

    job, row, vocal, window, model_sr = args
    sr = job.audio.sample_rate
    mix = audio.resample(audio.to_mono(window), model_sr, sr) if job.residue_path else None
    track = track_of(vocal, sr)
    return _finish(job, row, vocal, "demucs", track.stats(), track, mix)


def _demucs_device(device: Any, method: str) -> Any:
    """The torch device demucs would run on, or None when no demucs can run: then torch is not even
    imported here (~1 s of start-up a `prepare` of a few songs would mostly spend on it). A device asked
    for by name (cuda, mps) is always checked, so a missing GPU is an error whatever the method."""
    from vocalcli import separation

    name = getattr(device, "type", None) or str(getattr(device, "value", device) or "auto")
    explicit = name not in ("auto", "cpu")
    if not explicit and (method in ("none", "harmonic", "repet")
                         or (method == "auto" and not separation.demucs_available()[0])):
        return None
    from vocalcli.device import resolve_device

    return device if hasattr(device, "type") else resolve_device(name)


class _Inline:
    """A ProcessPoolExecutor stand-in that runs each call at once (one worker: no processes)."""

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        f: Future = Future()
        f.set_result(fn(*args))
        return f


def _run_demucs(jobs: list[Job], bases: list[dict[str, Any]], pool: Any, device: Any,
                record: Callable[[dict[str, Any], dict[str, Any]], None]) -> None:
    """demucs prepare: workers decode windows at 44.1 kHz stereo (stage 1), this process separates them a
    batch at a time on ``device`` (stage 2: one model, on the GPU when there is one), workers turn the
    vocal stems into pitch statistics and mels (stage 3). At most a few batches of windows (42 MB each)
    are in flight."""
    from collections import deque

    from vocalcli import separation

    model = separation.load_demucs()
    msr, mch = int(model.samplerate), int(model.audio_channels)
    size = separation.demucs_batch(device.type)
    ahead = 2 * size + 2
    todo = deque(zip(jobs, bases, strict=True))
    decoding: deque = deque()
    finishing: deque = deque()
    batch: list[tuple[Job, dict[str, Any], dict[str, Any], np.ndarray]] = []

    def separate_batch() -> None:
        try:
            vocals = separation.demucs_vocals(model, [w for *_, w in batch], msr, batch[0][0].audio.sample_rate,
                                              device)
        except VocalError as e:
            for _, base, row, _ in batch:
                record(base, {**row, "status": "separation_error", "reason": str(e)})
        else:
            for (job, base, row, w), v in zip(batch, vocals, strict=True):
                finishing.append((base, pool.submit(_finish_separated, (job, row, v, w, msr))))
        batch.clear()

    while todo or decoding or batch:
        while todo and len(decoding) < ahead:
            job, base = todo.popleft()
            decoding.append((job, base, pool.submit(_decode_for_model, (job, msr, mch))))
        if decoding:
            job, base, fut = decoding.popleft()
            row, window = fut.result()
            if window is None:
                record(base, row)
            else:
                batch.append((job, base, row, window))
        if batch and (len(batch) >= size or not (todo or decoding)):
            separate_batch()
        while finishing and finishing[0][1].done():
            base, fut = finishing.popleft()
            record(base, fut.result())
    for base, fut in finishing:
        record(base, fut.result())


def _init_worker(parent: int) -> None:
    """Set up a prepare worker: one BLAS/torch thread (processes, not threads, are how prepare scales),
    Ctrl-C left to the parent (which stops the pool itself), and death with the parent.

    A worker holds ~300 MB; one that outlived a killed parent would keep it until its job ended and then
    wait forever. On Linux the kernel kills it the moment the parent dies (PR_SET_PDEATHSIG); elsewhere a
    thread notices within a second. Its half-written temp file is swept by the next run.
    """
    os.environ["OMP_NUM_THREADS"] = "1"  # before torch is imported (demucs imports it on first use)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="vocal-parent-watch", daemon=True).start()
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)


def _stop_workers(pool: ProcessPoolExecutor) -> None:
    """Cancel what has not started and end the running workers now (an interrupted prepare keeps the
    rows it has; the songs in flight are redone on the next run)."""
    import multiprocessing as mp

    pool.shutdown(wait=False, cancel_futures=True)
    workers = mp.active_children()
    for w in workers:
        w.terminate()
    for w in workers:
        w.join(timeout=5)
        if w.is_alive():
            w.kill()
            w.join(timeout=5)


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """'2/4' -> (2, 4): the 2nd of 4 disjoint deterministic subsets (1-based)."""
    if not text:
        return None
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not m or not (1 <= int(m.group(1)) <= int(m.group(2))):
        raise ConfigError(f"--shard must be I/N with 1 <= I <= N (e.g. 1/4), got {text!r}")
    return int(m.group(1)), int(m.group(2))


def in_shard(sid: str, shard: tuple[int, int] | None) -> bool:
    if shard is None:
        return True
    i, n = shard
    return int(hashlib.sha1(sid.encode()).hexdigest()[:8], 16) % n == i - 1


@dataclass
class PrepareResult:
    rows: list[dict[str, Any]]
    processed: int
    skipped: int
    separation: str
    catalog: Path
    seconds: float
    warnings: list[str] = field(default_factory=list)  # singers.csv notes: unknown gender codes, ...

    @property
    def counts(self) -> dict[str, int]:
        return dict(Counter(r["status"] for r in self.rows))

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if r["status"] not in FINAL]


def same_file(row: dict[str, str], st: os.stat_result) -> bool:
    """Whether a file with stat ``st`` is still the one this catalog row was prepared from (its size and
    mtime, as prepare recorded them): how a rerun skips a song, and how recommend knows a query file is
    a catalog song."""
    return row.get("size") == str(st.st_size) and row.get("mtime_ns") == str(st.st_mtime_ns)


def _is_done(old: dict[str, str] | None, song: SongFile, st: os.stat_result, settings: str,
             proj: project_mod.Project, want_residue: bool = False) -> bool:
    if old is None or old.get("settings") != settings:
        return False
    if not same_file(old, st):
        return False
    if old.get("status") == "ok":  # rows from before pitch statistics (or residues) existed are redone
        done = bool(old.get("f0_hz")) and bool(old.get("mel")) and old.get("mel_stamp") == mel_stamp(
            proj.root / old["mel"])
        # and from before the f0 track was stored (the melody vector reads it)
        done = done and bool(old.get("pitch")) and (proj.root / old["pitch"]).is_file()
        if want_residue and old.get("separation") not in ("", "none"):
            done = done and bool(old.get("residue")) and (proj.root / old["residue"]).is_file()
        return done
    return True


def mel_stamp(path: Path) -> str:
    """'size:mtime_ns' of a stored mel, recorded in its catalog row when it is written.

    A mel rewritten since (by a run with other settings, or one killed before it wrote its row) no longer
    matches its row's stamp, so a rerun redoes the song instead of trusting a row about another mel.
    """
    try:
        st = os.stat(path)
    except OSError:
        return ""
    return f"{st.st_size}:{st.st_mtime_ns}"


def prepare_files(
    proj: project_mod.Project,
    songs_dir: Path,
    cfg: Config,
    *,
    meta_path: Path | None = None,
    workers: int | None = None,
    force: bool = False,
    shard: tuple[int, int] | None = None,
    progress: Callable[..., None] | None = None,
    on_total: Callable[[int], None] | None = None,
    device: Any = "auto",
    log: Callable[[str], None] | None = None,
) -> PrepareResult:
    """Prepare every song under ``songs_dir`` into ``proj``; returns all rows (done before + now).

    Rows are flushed to the catalog every few seconds, so an interrupted run keeps its progress.
    ``device`` is where demucs runs (the other separators are CPU code); ``log`` hears what `auto`
    chose and why, and what is downloaded.
    """
    t0 = time.perf_counter()
    songs_dir = Path(songs_dir).resolve()
    if meta_path is not None and not Path(meta_path).is_file():
        raise VocalError(f"singers file {meta_path} does not exist; fix the --meta path, or leave it out to use "
                         "SONGS_DIR/singers.csv")
    if meta_path is None and (songs_dir / "singers.csv").is_file():
        meta_path = songs_dir / "singers.csv"
    warnings: list[str] = []
    meta = catalog.read_singers(meta_path, warnings)
    found, problems = scan(songs_dir)
    if not found:
        loose = sum(p["status"] == "no_singer" for p in problems)
        raise VocalError(f"no songs in singer folders under {songs_dir}"
                         + (f" ({loose} audio files lie directly in it)" if loose else "")
                         + f"; {FOLDER_HINT}, e.g. {songs_dir}/alice/song.flac. Nothing was changed")
    missing = sorted(set(meta) - {s.singer for s in found})
    if missing:
        warnings.append(f"{meta_path}: {len(missing)} singers have no folder in {songs_dir}: "
                        f"{', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''} (check the spelling)")
    songs = [s for s in found if in_shard(s.song_id, shard)]
    dev = _demucs_device(device, cfg.prepare.separate)
    method = resolve_separation(cfg.prepare.separate, dev.type if dev else "cpu", len(songs),
                                cfg.audio.end_s - cfg.audio.start_s, log)
    settings = settings_hash(cfg.audio, method, cfg.prepare.silence_db)
    problem_rows = [{**p, "song_id": song_id(p["singer"], p["source"]), "title": p["source"].rsplit("/", 1)[-1],
                     "settings": settings} for p in problems]
    problem_rows = [r for r in problem_rows if in_shard(r["song_id"], shard)]
    catalog_path = proj.shard_catalog(*shard) if shard else proj.catalog
    old = {r["song_id"]: r for r in project_mod.read_csv(catalog_path)} if catalog_path.exists() else {}

    rows: dict[str, dict[str, Any]] = {}
    todo: list[tuple[SongFile, dict[str, Any]]] = []
    for s in songs:
        sid = s.song_id
        st = os.stat(s.path)
        m = meta.get(s.singer, {})
        base = {"song_id": sid, "singer": s.singer, "title": Path(s.source).stem, "source": s.source,
                "gender": m.get("gender", ""), "genre": m.get("genre", ""), "size": st.st_size,
                "mtime_ns": st.st_mtime_ns, "settings": settings}
        prev = old.get(sid)
        if not force and _is_done(prev, s, st, settings, proj, cfg.prepare.residue):
            rows[sid] = {**prev, **{k: base[k] for k in ("gender", "genre")}}
        else:
            todo.append((s, base))
    if on_total:
        on_total(len(todo))
    project_mod.write_json(proj.prepare_info, {"songs_dir": str(songs_dir), "separation": method,
                                               "settings": settings})

    def flush() -> None:
        ordered = [rows[s.song_id] for s in songs if s.song_id in rows] + problem_rows
        catalog.write(catalog_path, ordered)

    keep_residue = cfg.prepare.residue and method != "none"
    jobs = [Job(s, str(proj.mel_path(s.song_id)), cfg.audio, method, cfg.prepare.silence_db,
                str(proj.residue_path(s.song_id)) if keep_residue else "", str(proj.pitch_path(s.song_id)))
            for s, _ in todo]
    n_workers = workers if workers else (cfg.prepare.workers or os.cpu_count() or 1)
    n_workers = max(1, min(n_workers, len(jobs) or 1))
    last_flush = time.monotonic()

    def record(song_base: dict[str, Any], result: dict[str, Any]) -> None:
        nonlocal last_flush
        row = {**song_base, **result}
        if row["status"] == "ok":  # the row is made only now, after its mel was written
            mel = proj.mel_path(row["song_id"])
            row["mel"] = Path(mel).relative_to(proj.root).as_posix()
            row["mel_stamp"] = mel_stamp(mel)
            for col in ("residue", "pitch"):
                if row.get(col):
                    row[col] = Path(row[col]).relative_to(proj.root).as_posix()
        rows[row["song_id"]] = row
        if progress:
            progress(advance=1)
        if time.monotonic() - last_flush > 5:
            flush()
            last_flush = time.monotonic()

    try:
        if method == "demucs" and jobs:
            import multiprocessing as mp

            bases = [base for _, base in todo]
            dev = dev or _demucs_device("cpu", "demucs")
            if n_workers == 1:
                _run_demucs(jobs, bases, _Inline(), dev, record)
            else:
                with ProcessPoolExecutor(n_workers, mp_context=mp.get_context("spawn"),
                                         initializer=_init_worker, initargs=(os.getpid(),)) as pool:
                    _run_demucs(jobs, bases, pool, dev, record)
        elif n_workers == 1 or len(jobs) <= 1:
            for job, (_, base) in zip(jobs, todo, strict=True):
                record(base, prepare_file(job))
        else:
            import multiprocessing as mp

            from vocalcli.separation import RUNS_LIBROSA

            if method in RUNS_LIBROSA:
                warm_librosa_cache()
            pool = ProcessPoolExecutor(n_workers, mp_context=mp.get_context("spawn"), initializer=_init_worker,
                                       initargs=(os.getpid(),))
            try:
                for (_, base), result in zip(todo, pool.map(prepare_file, jobs, chunksize=1), strict=True):
                    record(base, result)
            except BaseException:  # Ctrl-C, SIGTERM, a full disk: no worker may outlive this call
                _stop_workers(pool)
                for folder in (proj.mels, proj.residues, proj.pitch):  # what the stopped workers were writing
                    project_mod.sweep_temps(folder)
                raise
            pool.shutdown()
    finally:
        flush()
    ordered = [rows[s.song_id] for s in songs if s.song_id in rows] + problem_rows
    return PrepareResult(ordered, len(jobs), len(songs) - len(jobs), method, catalog_path,
                         time.perf_counter() - t0, warnings)


def merge_shards(proj: project_mod.Project) -> list[dict[str, str]]:
    """Union of every shards/catalog.I-of-N.csv (and an existing catalog.csv) into catalog.csv.

    Later shard rows win over older catalog rows for the same song; rows are sorted by source.
    """
    merged: dict[str, dict[str, str]] = {}
    if proj.catalog.exists():
        merged.update({r["song_id"]: r for r in project_mod.read_csv(proj.catalog)})
    shard_files = sorted((proj.root / "shards").glob("catalog.*-of-*.csv"))
    if not shard_files:
        raise VocalError(f"no shard catalogs in {proj.root / 'shards'}; run 'vocal prepare SONGS --shard I/N' first")
    for f in shard_files:
        merged.update({r["song_id"]: r for r in project_mod.read_csv(f)})
    rows = sorted(merged.values(), key=lambda r: (r["singer"], r["source"]))
    catalog.write(proj.catalog, rows)
    return rows


def prepare_query(path: Path | str, cfg: Config, separate: str | None = None) -> tuple[np.ndarray, dict, np.ndarray]:
    """One query file through exactly the prepare pipeline -> (log-mel float32 [n_mels, frames], info, its f0
    track on the mel's frames [2, frames], as prepare stores it in pitch/).

    A file shorter than the window uses what it has (the tail after start_s, or the whole file when
    even that is under 10 s) and says so in info['warnings'].
    """
    from vocalcli import audio

    a: AudioConfig = cfg.audio
    path = Path(path)
    if path.is_dir():
        raise AudioError(f"the query {path} is a folder; give one audio file (or --song-id ID / --singer NAME)")
    if not path.is_file():
        raise AudioError(f"query file {path} does not exist")
    warnings: list[str] = []
    dec = audio.decode(path, a.start_s, a.end_s)
    got_s = dec.samples.shape[1] / dec.sample_rate
    if got_s < (a.end_s - a.start_s) - 0.01:
        if got_s < 10.0:
            dec = audio.decode(path, 0.0, a.end_s)
            got_s = dec.samples.shape[1] / dec.sample_rate
            warnings.append(f"{path.name} is {dec.duration_s:.1f} s, shorter than the window "
                            f"{a.start_s:g}-{a.end_s:g} s; used the whole file ({got_s:.1f} s)")
        else:
            warnings.append(f"{path.name} is {dec.duration_s:.1f} s, shorter than the window end {a.end_s:g} s; "
                            f"used {a.start_s:g}-{a.start_s + got_s:.1f} s")
    if dec.samples.shape[1] == 0:
        raise AudioError(f"{path}: no audio samples")
    y = audio.resample(audio.to_mono(dec.samples), dec.sample_rate, a.sample_rate)
    level = audio.rms_db(y)
    if not level >= cfg.prepare.silence_db:  # the catalog calls such a library song 'silent'
        raise AudioError(f"no voice in the query {path}: the window is silent ({level:.1f} dBFS < "
                         f"prepare.silence_db {cfg.prepare.silence_db:g} dBFS)")
    from vocalcli.pitch import separate_with_pitch, track_of

    method = resolve_separation(separate or cfg.prepare.separate)
    if method == "demucs":  # as prepare does: the decoded window at the model's rate and channels
        from vocalcli import separation

        vocal = separation.demucs_vocals(separation.load_demucs(), [dec.samples], dec.sample_rate, a.sample_rate)[0]
        track = track_of(vocal, a.sample_rate)
        used, pitch = "demucs", track.stats()
    else:
        vocal, used, pitch, track = separate_with_pitch(y, a.sample_rate, method)
    mel = audio.log_mel(vocal, a)
    return mel, {"warnings": warnings, "separation": used, "seconds": got_s, "duration_s": dec.duration_s,
                 **pitch}, track.at_frames(1.0 / a.frame_rate, mel.shape[1])
