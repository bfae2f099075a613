"""Listening clips of prepared songs: the original and the vocal estimate of the same few seconds.

Why clips: people judge a voice recommender by ear, and they need to hear what MR removal did. Why
short ones: a site for 4,500 songs must stay a few MB per 100 songs, so each song gets two mono
16 kHz Ogg Opus clips of ``report.clip_s`` seconds (``report.clip_kbps``, 20 kbit/s: ~26 kB per 10 s
clip) instead of the whole analysed window. 16 kHz mono is exactly what vocal analysed, so what you
hear is what it heard.

Which seconds: the loudest ``clip_s`` of the *vocal estimate*, found on the mel that prepare stored
(no second separation of the whole window): where the voice is strongest, not where the band is.

The vocal clip re-runs the song's own separation method (the catalog's ``separation`` column) on the
clip's stretch plus ``CONTEXT_S`` of audio either side, which is then cut off: prepare keeps no audio.
Both clips get the same gain (the original's level set to ``TARGET_DBFS`` RMS, peaks kept below
``PEAK_DBFS``), so the vocal estimate is heard at the level it really has next to the mixture.

Layered like prepare: ``loudest_start`` (pure) -> ``write_clip_pair`` (one song, never raises for bad
audio) -> ``write_clips`` (every song, parallel, resumable through ``clips.json``, with progress).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vocalcli import project as project_mod
from vocalcli.config import AudioConfig, Config
from vocalcli.errors import VocalError

SUFFIX = ".opus"
"""Ogg Opus; browsers (Chrome, Firefox, Safari >= 17) and music players know the extension."""
MIME = "audio/ogg; codecs=opus"
CLIP_VERSION = 1
"""Bump when what a clip holds changes: every clip is then rewritten."""
CONTEXT_S = 1.0
"""Seconds of audio either side of the clip given to the separator and then cut off (its pitch
tracker and fluctuation statistics need context to settle)."""
TARGET_DBFS = -20.0
PEAK_DBFS = -1.0
OPUS_COMPLEXITY = 5
"""libopus complexity 0-10: 5 encodes a 10 s clip in ~6 ms of CPU per second of audio, 1.5x faster than
10 and not audibly worse at these bitrates (docs/decisions.md)."""
MANIFEST = "clips.json"


def loudest_start(log_mel: np.ndarray, frames: int) -> int:
    """Start frame of the ``frames``-long stretch of ``log_mel`` [n_mels, n] with the most energy.

    Energy = mel power summed over bands (exp of the natural-log mel), summed over the stretch; ties go
    to the earliest start. 0 when the mel is not longer than ``frames``.
    """
    mel = np.asarray(log_mel, dtype=np.float64)
    n = mel.shape[1]
    if n <= frames:
        return 0
    power = np.exp(mel).sum(axis=0)
    csum = np.concatenate([[0.0], np.cumsum(power)])
    sums = csum[frames:] - csum[:-frames]
    return int(np.argmax(sums))


@dataclass(frozen=True)
class ClipJob:
    song_id: str
    source: str  # absolute path of the song file
    start_s: float  # clip start in the song, seconds
    clip_s: float
    separation: str  # the method prepare used for this song
    kbps: float
    original: str  # output paths
    vocal: str
    sample_rate: int = 16000


def encode_opus(path: Path, y: np.ndarray, sr: int, kbps: float) -> int:
    """Write mono float ``y`` [n] at ``sr`` Hz (8/12/16/24/48 kHz) as Ogg Opus; returns the file size.

    PyAV's bundled libopus, not libsndfile's: the same codec, ~6x less CPU here and an exact bitrate
    (libsndfile only offers a 0-1 "compression level").
    """
    import av

    path = Path(path)
    with project_mod.atomic_path(path) as tmp:
        with av.open(str(tmp), "w", format="ogg") as out:
            stream = out.add_stream("libopus", rate=sr, options={"compression_level": str(OPUS_COMPLEXITY)})
            stream.layout = "mono"
            stream.bit_rate = int(kbps * 1000)
            ctx = stream.codec_context
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(y, dtype=np.float32)[None, :], format="flt",
                                               layout="mono")
            frame.sample_rate, frame.pts = sr, 0
            resampler = av.AudioResampler(format=ctx.format.name, layout="mono", rate=sr,
                                          frame_size=ctx.frame_size or 960)
            for f in resampler.resample(frame) + resampler.resample(None):
                for packet in stream.encode(f):
                    out.mux(packet)
            for packet in stream.encode(None):
                out.mux(packet)
    return path.stat().st_size


def write_clip_pair(job: ClipJob) -> dict[str, Any]:
    """Decode the stretch, separate it, write both clips. Returns {'status', 'reason', 'bytes', ...}.

    Never raises for bad audio or a separator that cannot run here: the failure is the result.
    """
    from vocalcli import audio
    from vocalcli.separation import separate

    sr = job.sample_rate
    lead = min(CONTEXT_S, job.start_s)
    try:
        dec = audio.decode(job.source, job.start_s - lead, job.start_s + job.clip_s + CONTEXT_S)
        y = audio.resample(audio.to_mono(dec.samples), dec.sample_rate, sr)
    except Exception as e:  # AudioError, or a decoder bug: one song must not stop the report
        return {"status": "error", "reason": f"decode: {e}"}
    try:
        vocal, used = separate(y, sr, job.separation)
    except VocalError as e:
        return {"status": "error", "reason": f"separation: {e}"}
    a, b = round(lead * sr), round((lead + job.clip_s) * sr)
    y, vocal = y[a:b], vocal[a:b]
    if y.size == 0:
        return {"status": "error", "reason": "no audio in the clip's stretch"}
    rms = float(np.sqrt(np.mean(np.square(y, dtype=np.float64))))
    peak = float(max(np.abs(y).max(), np.abs(vocal).max()))
    gain = 10 ** (TARGET_DBFS / 20) / max(rms, 1e-9)
    gain = min(gain, 10 ** (PEAK_DBFS / 20) / max(peak, 1e-9))
    size = encode_opus(Path(job.original), (y * gain).astype(np.float32), sr, job.kbps)
    size += encode_opus(Path(job.vocal), (vocal * gain).astype(np.float32), sr, job.kbps)
    return {"status": "ok", "reason": "", "bytes": size, "separation": used, "seconds": y.size / sr}


@dataclass
class ClipsResult:
    clips: dict[str, dict[str, Any]]  # song_id -> {original, vocal (paths relative to out_dir), start_s, ...}
    written: int
    reused: int
    failed: dict[str, str]  # song_id -> reason
    bytes: int


def clip_names(song_id: str) -> tuple[str, str]:
    """Paths, relative to the report directory, of a song's original and vocal clips."""
    return f"clips/{song_id}.mix{SUFFIX}", f"clips/{song_id}.voice{SUFFIX}"


def _clip_key(row: dict[str, str], audio_cfg: AudioConfig, clip_s: float, kbps: float) -> str:
    """What a song's clips are made from; a change rewrites them."""
    blob = json.dumps([row.get("source"), row.get("size"), row.get("mtime_ns"), row.get("settings"),
                       row.get("separation"), audio_cfg.start_s, audio_cfg.sample_rate, clip_s, kbps,
                       CLIP_VERSION], sort_keys=True)
    return hashlib.sha1(blob.encode()).hexdigest()[:12]


def plan(project: project_mod.Project, cfg: Config, rows: Sequence[dict[str, str]], songs_dir: Path,
         out_dir: Path) -> list[tuple[ClipJob, str]]:
    """(job, key) for every ``ok`` row with a stored mel: where its loudest voiced stretch is."""
    a = cfg.audio
    clip_s = min(cfg.report.clip_s, a.end_s - a.start_s)
    frames = max(1, round(clip_s * a.frame_rate))
    jobs = []
    for r in rows:
        mel_path = project.root / r["mel"] if r.get("mel") else None
        if r.get("status") != "ok" or mel_path is None or not mel_path.is_file():
            continue
        start = a.start_s + loudest_start(np.load(mel_path, mmap_mode="r"), frames) / a.frame_rate
        orig, voice = clip_names(r["song_id"])
        jobs.append((ClipJob(r["song_id"], str(Path(songs_dir) / r["source"]), round(start, 3), clip_s,
                             r.get("separation") or "none", cfg.report.clip_kbps, str(out_dir / orig),
                             str(out_dir / voice), a.sample_rate),
                     _clip_key(r, a, clip_s, cfg.report.clip_kbps)))
    return jobs


def _init_worker() -> None:
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)


def write_clips(project: project_mod.Project, cfg: Config, rows: Sequence[dict[str, str]], songs_dir: Path,
                out_dir: Path, *, workers: int = 1, force: bool = False,
                progress: Callable[..., None] | None = None) -> ClipsResult:
    """Both clips of every prepared song into ``out_dir/clips``; songs whose clips are current are kept.

    ``clips.json`` records each song's key and clip facts and is rewritten as songs finish, so an
    interrupted report resumes where it stopped.
    """
    out_dir = Path(out_dir)
    manifest_path = out_dir / "clips" / MANIFEST
    old: dict[str, dict[str, Any]] = {}
    if manifest_path.is_file() and not force:
        try:
            old = json.loads(manifest_path.read_text(encoding="utf-8")).get("clips", {})
        except (OSError, json.JSONDecodeError):
            old = {}  # a damaged manifest only costs re-encoding
    jobs = plan(project, cfg, rows, songs_dir, out_dir)
    done: dict[str, dict[str, Any]] = {}
    todo: list[tuple[ClipJob, str]] = []
    for job, key in jobs:
        prev = old.get(job.song_id)
        if prev and prev.get("key") == key and Path(job.original).is_file() and Path(job.vocal).is_file():
            done[job.song_id] = prev
        else:
            todo.append((job, key))
    reused = len(done)
    if progress:
        progress(advance=0, total=len(todo))
    failed: dict[str, str] = {}

    def record(job: ClipJob, key: str, res: dict[str, Any]) -> None:
        if res["status"] == "ok":
            orig, voice = clip_names(job.song_id)
            done[job.song_id] = {"key": key, "original": orig, "vocal": voice, "start_s": job.start_s,
                                 "seconds": round(res["seconds"], 3), "bytes": res["bytes"],
                                 "separation": res["separation"]}
        else:
            failed[job.song_id] = res["reason"]
        if progress:
            progress(advance=1)

    def flush() -> None:
        project_mod.write_json(manifest_path, {"version": CLIP_VERSION, "clips": done})

    try:
        n = max(1, min(workers, len(todo)))
        if n == 1:
            for i, (job, key) in enumerate(todo):
                record(job, key, write_clip_pair(job))
                if i % 50 == 49:
                    flush()
        else:
            import multiprocessing as mp

            from vocalcli.audio import warm_librosa_cache
            from vocalcli.separation import RUNS_LIBROSA

            if any(job.separation in RUNS_LIBROSA for job, _ in todo):
                warm_librosa_cache()
            with ProcessPoolExecutor(n, mp_context=mp.get_context("spawn"), initializer=_init_worker) as pool:
                results = pool.map(write_clip_pair, [j for j, _ in todo], chunksize=4)
                for i, ((job, key), res) in enumerate(zip(todo, results, strict=True)):
                    record(job, key, res)
                    if i % 50 == 49:
                        flush()
    finally:
        flush()
    keep = {Path(p).name for c in done.values() for p in (c["original"], c["vocal"])}
    for f in (out_dir / "clips").glob(f"*{SUFFIX}"):
        if f.name not in keep:  # songs that left the catalog, or clips of an older layout
            f.unlink()
    return ClipsResult(done, len(todo) - len(failed), reused, failed,
                       sum(int(c.get("bytes", 0)) for c in done.values()))
