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
import time
import unicodedata
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vocalcli import catalog
from vocalcli import project as project_mod
from vocalcli.audio import AUDIO_EXTENSIONS
from vocalcli.config import AudioConfig, Config
from vocalcli.errors import AudioError, ConfigError, VocalError

PIPELINE_VERSION = 3  # 2: fluctuation-weighted tracker; 3: pitch from the separator's own track
"""Bump when the meaning of a stored mel changes: every song is then redone on the next prepare."""

FINAL = {"ok", "too_short", "silent"}
"""Statuses that are a property of the file itself; anything else is a failure (exit code 1)."""


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
    digest = hashlib.sha1(source.encode("utf-8")).hexdigest()[:8]
    return f"{_slug(singer, 40)}_{_slug(stem, 60)}_{digest}"


def discover(songs_dir: Path) -> list[SongFile]:
    """Every audio file under ``songs_dir/<singer>/`` (any depth), sorted for determinism."""
    songs_dir = Path(songs_dir)
    if not songs_dir.is_dir():
        raise VocalError(f"songs directory {songs_dir} does not exist; expected SONGS_DIR/<singer>/<song>.<ext>")
    out = []
    for singer_dir in sorted(p for p in songs_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for f in sorted(singer_dir.rglob("*")):
            if f.is_file() and f.suffix.lower() in AUDIO_EXTENSIONS and not f.name.startswith("."):
                rel = f.relative_to(songs_dir).as_posix()
                out.append(SongFile(singer_dir.name, rel, str(f.resolve())))
    return out


def settings_hash(cfg: AudioConfig, separation: str, silence_db: float) -> str:
    """What shapes a stored mel; a change makes prepare redo the song."""
    blob = json.dumps([asdict(cfg), separation, silence_db, PIPELINE_VERSION], sort_keys=True)
    return hashlib.sha1(blob.encode()).hexdigest()[:12]


def resolve_separation(method: str) -> str:
    """'auto' -> 'demucs' when its package and weights are usable here, else 'harmonic'."""
    if method in ("none", "harmonic", "repet"):
        return method
    from vocalcli import separation

    if method == "auto":
        ok, _ = separation.demucs_available()
        return "demucs" if ok else "harmonic"
    if method == "demucs":
        ok, why = separation.demucs_available()
        if not ok:
            raise ConfigError(f"--separate demucs is not usable here: {why}")
    return method


@dataclass(frozen=True)
class Job:
    song: SongFile
    mel_path: str
    audio: AudioConfig
    separation: str
    silence_db: float


def prepare_file(job: Job) -> dict[str, Any]:
    """Decode the window, downmix, resample, separate, mel -> save. Returns the catalog fields it knows.

    Never raises for bad audio: the failure becomes the row's status and reason.
    """
    from vocalcli import audio

    cfg = job.audio
    row: dict[str, Any] = {"status": "ok", "reason": "", "mel": "", "duration_s": ""}
    try:
        dec = audio.decode(job.song.path, cfg.start_s, cfg.end_s)
    except AudioError as e:
        return {**row, "status": "decode_error", "reason": str(e)}
    except Exception as e:  # a decoder bug must not stop a 10,000-song run
        return {**row, "status": "decode_error", "reason": f"{type(e).__name__}: {e}"}
    row["duration_s"] = f"{dec.duration_s:.3f}"
    want = round((cfg.end_s - cfg.start_s) * dec.sample_rate)
    got = dec.samples.shape[1]
    if got < want - max(1, dec.sample_rate // 100):  # 10 ms slack for codec priming/padding
        decoded_s = cfg.start_s + got / dec.sample_rate
        if dec.duration_s >= cfg.end_s - 0.01:
            return {**row, "status": "decode_error",
                    "reason": f"truncated or corrupt: header says {dec.duration_s:.1f} s, decoded {decoded_s:.1f} s"}
        return {**row, "status": "too_short",
                "reason": f"{dec.duration_s:.1f} s < {cfg.end_s:g} s needed for the window"}
    y = audio.resample(audio.to_mono(dec.samples), dec.sample_rate, cfg.sample_rate)
    if not np.all(np.isfinite(y)):
        return {**row, "status": "decode_error", "reason": "decoded samples are NaN/inf"}
    level = audio.rms_db(y)
    if level < job.silence_db:
        return {**row, "status": "silent", "reason": f"window RMS {level:.1f} dBFS < {job.silence_db:g} dBFS"}
    from vocalcli.pitch import separate_with_pitch

    try:
        vocal, used, pitch = separate_with_pitch(y, cfg.sample_rate, job.separation)
    except VocalError as e:
        return {**row, "status": "separation_error", "reason": str(e)}
    mel = audio.fit_frames(audio.log_mel(vocal, cfg), cfg.n_frames)
    project_mod.save_npy(Path(job.mel_path), mel.astype(np.float16))
    return {**row, "separation": used, **{k: f"{v:.1f}" for k, v in pitch.items()}}


def _init_worker() -> None:
    """One BLAS/torch thread per process: processes, not threads, are how prepare scales."""
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)


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

    @property
    def counts(self) -> dict[str, int]:
        return dict(Counter(r["status"] for r in self.rows))

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if r["status"] not in FINAL]


def _is_done(old: dict[str, str] | None, song: SongFile, st: os.stat_result, settings: str,
             proj: project_mod.Project) -> bool:
    if old is None or old.get("settings") != settings:
        return False
    if old.get("size") != str(st.st_size) or old.get("mtime_ns") != str(st.st_mtime_ns):
        return False
    if old.get("status") == "ok":  # rows from before pitch statistics existed are redone
        return bool(old.get("mel")) and (proj.root / old["mel"]).is_file() and bool(old.get("f0_hz"))
    return True


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
) -> PrepareResult:
    """Prepare every song under ``songs_dir`` into ``proj``; returns all rows (done before + now).

    Rows are flushed to the catalog every few seconds, so an interrupted run keeps its progress.
    """
    t0 = time.perf_counter()
    songs_dir = Path(songs_dir).resolve()
    if meta_path is None and (songs_dir / "singers.csv").is_file():
        meta_path = songs_dir / "singers.csv"
    meta = catalog.read_singers(meta_path)
    method = resolve_separation(cfg.prepare.separate)
    settings = settings_hash(cfg.audio, method, cfg.prepare.silence_db)
    songs = [s for s in discover(songs_dir) if in_shard(s.song_id, shard)]
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
        if not force and _is_done(prev, s, st, settings, proj):
            rows[sid] = {**prev, **{k: base[k] for k in ("gender", "genre")}}
        else:
            todo.append((s, base))
    if on_total:
        on_total(len(todo))
    project_mod.write_json(proj.prepare_info, {"songs_dir": str(songs_dir), "separation": method,
                                               "settings": settings})

    def flush() -> None:
        ordered = [rows[s.song_id] for s in songs if s.song_id in rows]
        catalog.write(catalog_path, ordered)

    jobs = [Job(s, str(proj.mel_path(s.song_id)), cfg.audio, method, cfg.prepare.silence_db)
            for s, _ in todo]
    n_workers = workers if workers else (cfg.prepare.workers or os.cpu_count() or 1)
    n_workers = max(1, min(n_workers, len(jobs) or 1))
    last_flush = time.monotonic()

    def record(song_base: dict[str, Any], result: dict[str, Any]) -> None:
        nonlocal last_flush
        row = {**song_base, **result}
        if row["status"] == "ok":
            row["mel"] = Path(proj.mel_path(row["song_id"])).relative_to(proj.root).as_posix()
        rows[row["song_id"]] = row
        if progress:
            progress(advance=1)
        if time.monotonic() - last_flush > 5:
            flush()
            last_flush = time.monotonic()

    try:
        if n_workers == 1 or len(jobs) <= 1:
            for job, (_, base) in zip(jobs, todo, strict=True):
                record(base, prepare_file(job))
        else:
            import multiprocessing as mp

            with ProcessPoolExecutor(n_workers, mp_context=mp.get_context("spawn"),
                                     initializer=_init_worker) as pool:
                for (_, base), result in zip(todo, pool.map(prepare_file, jobs, chunksize=1), strict=True):
                    record(base, result)
    finally:
        flush()
    ordered = [rows[s.song_id] for s in songs if s.song_id in rows]
    return PrepareResult(ordered, len(jobs), len(songs) - len(jobs), method, catalog_path,
                         time.perf_counter() - t0)


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


def prepare_query(path: Path | str, cfg: Config, separate: str | None = None) -> tuple[np.ndarray, dict]:
    """One query file through exactly the prepare pipeline -> (log-mel float32 [n_mels, frames], info).

    A file shorter than the window uses what it has (the tail after start_s, or the whole file when
    even that is under 10 s) and says so in info['warnings'].
    """
    from vocalcli import audio

    a: AudioConfig = cfg.audio
    path = Path(path)
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
    from vocalcli.pitch import separate_with_pitch

    vocal, used, pitch = separate_with_pitch(y, a.sample_rate, resolve_separation(separate or cfg.prepare.separate))
    mel = audio.log_mel(vocal, a)
    return mel, {"warnings": warnings, "separation": used, "seconds": got_s, "duration_s": dec.duration_s,
                 **pitch}
