"""Song -> timbre and melody vectors, from the best checkpoints of both models.

Layered like torchcrepe: `Embedder.embed(log_mel)` for one mel -> `embed_project` for every `ok` song
of the catalog (load once, loop with progress, write atomically) -> `load_embeddings` for consumers,
which refuses embeddings made by checkpoints other than today's best.pt.

* timbre: the contrastive encoder over crops every ``contrastive.extract_hop_s`` covering the song (the
  last crop flush with the end), the normalised mean of the crop embeddings; deterministic. Joined with
  the song's cepstral correlation signature as vocal.yaml's ``timbre`` section says (vocalcli/cepstral.py),
  the signature first normalised within singers as learned from this catalog's singer folders
  (cepstral_whitening.npy; queries get the same); both parts are kept too, the signature as computed
  (encoder.npy, cepstral.npy), so `vocal evaluate` can report each and re-learn the normalisation
  without the singer it scores.
* melody: the TCAE encoder's latent of the whole normalised mel -> `melody_embedding`, its lags counted
  in beats of the pooled input (`beat_period`).
Both models are rebuilt from the configs stored inside their checkpoints, not from today's vocal.yaml.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vocalcli import cepstral, checkpoint, data, loudness
from vocalcli import project as project_mod
from vocalcli.config import MelodyConfig, TimbreConfig
from vocalcli.errors import MissingArtifact, StaleArtifact
from vocalcli.models import tcae as tcae_mod
from vocalcli.models.encoder import TimbreEncoder
from vocalcli.models.tcae import TCAE, beat_period, centre_bands, melody_embedding, note_changes, pool_frames
from vocalcli.tasks import TASKS

PARTS = (*(t.embedding for t in TASKS.values()), "encoder", "cepstral", "melody_tcae", "melody_pitch")
"""embeddings/<part>.npy: each model's song vector, then the timbre vector's two parts and the melody
vector's two."""
IDS_FIELDS = ["row", "song_id"]
WHITENING = "cepstral_whitening.npy"
"""embeddings/<this>: [1 + D, D] float64, the signature normalisation's mean (row 0) and transform."""


def crop_starts(frames: int, crop: int, hop: int | None = None, n: int | None = None) -> np.ndarray:
    """Start frames of crops covering a song: every ``hop`` frames (last crop flush with the end), or
    ``n`` evenly spaced crops; [0] when the song is not longer than one crop."""
    room = frames - crop
    if room <= 0:
        return np.zeros(1, dtype=np.int64)
    if n is not None:
        return np.unique(np.round(np.linspace(0, room, n)).astype(np.int64))
    starts = np.arange(0, room + 1, max(1, hop or crop), dtype=np.int64)
    return starts if starts[-1] == room else np.append(starts, room)


def _padded(mel: np.ndarray, frames: int) -> np.ndarray:
    """``mel`` edge-padded to at least ``frames`` frames (a song shorter than one encoder crop)."""
    if mel.shape[1] >= frames:
        return mel
    return np.pad(mel, ((0, 0), (0, frames - mel.shape[1])), mode="edge")


def _crops(mel: np.ndarray, crop: int, starts: np.ndarray) -> np.ndarray:
    """[n, n_mels, crop] float32 from [n_mels, frames] (edge-padded when shorter than a crop)."""
    mel = _padded(mel, crop)
    win = np.lib.stride_tricks.sliding_window_view(mel, crop, axis=1)  # [n_mels, frames-crop+1, crop]
    return np.ascontiguousarray(win[:, starts].transpose(1, 0, 2), dtype=np.float32)


@torch.no_grad()
def timbre_of(model: TimbreEncoder, mel: np.ndarray, crop: int, device: torch.device,
              hop: int | None = None, n_crops: int | None = None, max_batch: int = 64) -> np.ndarray:
    """One song's timbre vector [D] float32: normalised mean of its crop embeddings."""
    starts = crop_starts(mel.shape[1], crop, hop=hop, n=n_crops)
    x = torch.from_numpy(_crops(mel, crop, starts))
    parts = [model(x[i:i + max_batch].to(device)).float() for i in range(0, len(x), max_batch)]
    v = torch.cat(parts).mean(dim=0)
    return torch.nn.functional.normalize(v, dim=0).cpu().numpy().astype(np.float32)


def timbre_embeddings(model: TimbreEncoder, bank: data.MelBank, crop: int, device: torch.device,
                      n_crops: int | None = None, hop: int | None = None, songs_per_batch: int = 16) -> np.ndarray:
    """[N, D] timbre vectors of every song in ``bank`` (validation uses a few evenly spaced crops)."""
    out = [timbre_batch(model, [bank.view(i) for i in range(s, min(s + songs_per_batch, len(bank)))], crop, device,
                        hop=hop, n_crops=n_crops) for s in range(0, len(bank), songs_per_batch)]
    return np.concatenate(out) if out else np.zeros((0, model.cfg.embedding_dim), np.float32)


@torch.no_grad()
def timbre_batch(model: TimbreEncoder, mels: list[np.ndarray], crop: int, device: torch.device,
                 hop: int | None = None, n_crops: int | None = None, max_batch: int = 256) -> np.ndarray:
    """Several songs' timbre vectors [len(mels), D] float32, each as `timbre_of` makes it: the crops of
    all songs go through the encoder together (fewer, fuller forward passes), then are averaged per song."""
    starts = [crop_starts(m.shape[1], crop, hop=hop, n=n_crops) for m in mels]
    x = torch.from_numpy(np.concatenate([_crops(m, crop, st) for m, st in zip(mels, starts, strict=True)]))
    owner = torch.repeat_interleave(torch.arange(len(mels)), torch.tensor([len(st) for st in starts]))
    parts = [model(x[i:i + max_batch].to(device, non_blocking=True)).float() for i in range(0, len(x), max_batch)]
    sums = torch.zeros(len(mels), parts[0].shape[1], device=parts[0].device).index_add_(
        0, owner.to(parts[0].device), torch.cat(parts))
    return torch.nn.functional.normalize(sums, dim=1).cpu().numpy().astype(np.float32)


@torch.no_grad()
def melody_of(model: TCAE, mel: np.ndarray, device: torch.device, frame_rate: float,
              melody: MelodyConfig | None = None, centres_hz: np.ndarray | None = None) -> np.ndarray:
    """One song's melody vector [Dm] float32 from the TCAE latent of the whole song (``frame_rate`` =
    mel frames per second, to count the latent's lags in beats). ``melody``: how the beat is found
    (vocal.yaml's ``melody`` section); ``centres_hz``: the mel bands' centre frequencies [n_mels], for
    its ``onset_max_hz`` (None = every band)."""
    return melody_batch(model, [mel], device, frame_rate, melody, centres_hz)[0]


def melody_batch(model: TCAE, mels: list[np.ndarray], device: torch.device, frame_rate: float,
                 melody: MelodyConfig | None = None, centres_hz: np.ndarray | None = None) -> np.ndarray:
    """The TCAE latent's melody vectors [len(mels), Dm] float32; songs of equal length share one forward
    pass (the model is causal and per-sample, so a song's vector does not depend on its batch-mates).
    ``melody``, ``centres_hz``: as in `melody_of`."""
    return _latent_profiles(model, mels, device, frame_rate, melody, centres_hz)[0]


def melody_parts(model: TCAE, mels: list[np.ndarray], tracks: list[np.ndarray | None], device: torch.device,
                 frame_rate: float, melody: MelodyConfig | None = None,
                 centres_hz: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """{'melody', 'melody_tcae', 'melody_pitch'} [len(mels), D] float32: the song's melody vector and its
    two parts, the TCAE latent's profile and the sung pitch's (`vocalcli.pitch_profile`, read from the
    f0 track [2, frames] on the mel's frames, at the same beat). The melody vector is their join, the
    pitch part weighted ``melody.pitch_weight``, L2-normalised (weight 0: the latent's profile alone). A
    song without a track (None) gets a zero pitch part, so its vector points where the latent's does.
    Only the latent needs the model: the pitch part is training-free."""
    from vocalcli import pitch_profile

    md = melody or MelodyConfig()
    latent, periods = _latent_profiles(model, mels, device, frame_rate, md, centres_hz)
    pitch = np.zeros_like(latent)
    for i, tr in enumerate(tracks):
        if tr is not None:
            pitch[i] = pitch_profile.profile(np.asarray(tr), periods[i], md.pitch_loud_fraction, md.pitch_sigma)
    if md.pitch_weight == 0:
        return {"melody": latent, "melody_tcae": latent, "melody_pitch": pitch}
    joined = np.concatenate([latent, md.pitch_weight * pitch], axis=1)
    joined /= np.maximum(np.linalg.norm(joined, axis=1, keepdims=True), 1e-12)
    return {"melody": joined.astype(np.float32), "melody_tcae": latent, "melody_pitch": pitch}


@torch.no_grad()
def _latent_profiles(model: TCAE, mels: list[np.ndarray], device: torch.device, frame_rate: float,
                     melody: MelodyConfig | None = None,
                     centres_hz: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(the TCAE latent's melody vectors [len(mels), Dm], each song's beat period in mel frames)."""
    md = melody or MelodyConfig()
    d = model.cfg.downsample
    steps_per_s = frame_rate / d
    out: list[np.ndarray | None] = [None] * len(mels)
    beats = np.zeros(len(mels), np.float64)
    by_len: dict[int, list[int]] = {}
    for i, m in enumerate(mels):
        by_len.setdefault(int(m.shape[1]), []).append(i)
    for idx in by_len.values():
        x = centre_bands(torch.from_numpy(np.stack([np.asarray(mels[i], dtype=np.float32) for i in idx]))
                      .to(device, non_blocking=True))
        # the beat from note changes of the input (see note_changes), pooled like the encoder's input;
        # the profile from the latent
        onsets = x if centres_hz is None else note_changes(x, centres_hz, md.onset_max_hz)
        period = beat_period(pool_frames(onsets, d), steps_per_s, prior_bpm=md.tempo_prior_bpm,
                             prior_octaves=md.tempo_prior_octaves)
        vecs = melody_embedding(model.encode(x), steps_per_s, period).float().cpu().numpy().astype(np.float32)
        for j, i in enumerate(idx):
            out[i] = vecs[j]
            beats[i] = float(period[j]) * d
    return np.stack(out), beats  # type: ignore[arg-type]


def melody_settings(md: MelodyConfig) -> dict[str, Any]:
    """What embeddings/meta.json records, so melody vectors made with other settings are refused."""
    return {"tempo_prior_bpm": float(md.tempo_prior_bpm), "tempo_prior_octaves": float(md.tempo_prior_octaves),
            "onset_max_hz": float(md.onset_max_hz), "beat_refine": list(tcae_mod.REFINE_BEATS),
            "pitch_weight": float(md.pitch_weight), "pitch_loud_fraction": float(md.pitch_loud_fraction),
            "pitch_sigma": float(md.pitch_sigma)}


class Embedder:
    """Both models, loaded once from their best.pt; ``embed(log_mel)`` -> (timbre, melody)."""

    def __init__(self, encoder: TimbreEncoder, tcae: TCAE, crop: int, hop: int, device: torch.device,
                 checkpoint_hashes: dict[str, str], frame_rate: float = 62.5,
                 timbre: TimbreConfig | None = None, melody: MelodyConfig | None = None,
                 mel_centres_hz: np.ndarray | None = None) -> None:
        self.encoder, self.tcae = encoder.eval(), tcae.eval()
        self.timbre = timbre or TimbreConfig()  # how the encoder's vector and the signature are joined
        self.melody = melody or MelodyConfig()  # how the melody vector's beat is found
        self.frame_rate = frame_rate  # mel frames per second of the TCAE's training run
        self.mel_centres_hz = mel_centres_hz  # [n_mels] of the TCAE's training run; None = every band
        self.crop, self.hop, self.device = crop, hop, device
        self.checkpoint_hashes = checkpoint_hashes
        self.encoder_positives = "song"  # where the encoder's positives came from (singer = it saw labels)
        self.encoder_loud_fraction = 1.0  # the encoder reads this loudest fraction of a song's frames
        self.whitening: cepstral.Whitening | None = None  # the catalog's signature normalisation, if any

    @classmethod
    def from_project(cls, project: project_mod.Project, device: str | torch.device = "auto",
                     timbre: TimbreConfig | None = None, melody: MelodyConfig | None = None,
                     whitening: bool = True) -> Embedder:
        """``timbre``, ``melody``: the join and beat settings (default: the project's vocal.yaml).
        ``whitening``: normalise signatures as the catalog's embeddings were (`load_whitening`), so a new
        file's vector compares with the indexed ones; `embed_project` learns its own instead."""
        from vocalcli.audio import mel_centres
        from vocalcli.config import AudioConfig
        from vocalcli.device import resolve_device

        dev = device if isinstance(device, torch.device) else resolve_device(device)
        paths = {t: project.checkpoint(t, "best") for t in TASKS}
        for t, p in paths.items():
            if not p.exists():
                raise MissingArtifact(f"no {t} model at {p}; run '{TASKS[t].train_command}' first")
        cks = {t: checkpoint.load(p, t, TASKS[t].train_command) for t, p in paths.items()}
        models = {}
        for t, ck in cks.items():  # rebuilt from the config stored in the checkpoint, not vocal.yaml
            models[t] = TASKS[t].build_model(ck["model_config"])
            models[t].load_state_dict(ck["model"])
        enc, tcae, ck_c, ck_t = models["contrastive"], models["tcae"], cks["contrastive"], cks["tcae"]
        run = ck_c["config"]  # crop geometry of the run that trained the encoder
        frame_rate = run["audio"]["sample_rate"] / run["audio"]["hop_length"]
        crop = max(16, round(run["contrastive"]["crop_s"] * frame_rate))
        hop = max(1, round(run["contrastive"]["extract_hop_s"] * frame_rate))
        hashes = {t: project_mod.file_digest(p) for t, p in paths.items()}
        ta = ck_t["config"]["audio"]
        centres = mel_centres(AudioConfig(n_mels=ta["n_mels"], fmin=ta["fmin"], fmax=ta["fmax"]))
        if timbre is None or melody is None:
            cfg = project.load_config()
            timbre, melody = timbre or cfg.timbre, melody or cfg.melody
        out = cls(enc.to(dev), tcae.to(dev), crop, hop, dev, hashes, ta["sample_rate"] / ta["hop_length"], timbre,
                  melody, centres)
        out.encoder_positives = run["contrastive"].get("positives", "song")
        out.encoder_loud_fraction = float(run["contrastive"].get("loud_fraction", 1.0))
        if whitening and timbre.within_singer:
            out.whitening = load_whitening(project)
        return out

    def embed(self, log_mel: np.ndarray, track: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """[n_mels, frames] log-mel (float16/32) and its f0 track [2, frames] as prepare stores it (None:
        the melody vector is the latent's alone) -> (timbre [Dt], melody [Dm]), L2-normalised float32."""
        parts = self.embed_parts(log_mel, track)
        return parts["timbre"], parts["melody"]

    def embed_parts(self, log_mel: np.ndarray, track: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """{'timbre', 'melody', 'encoder', 'cepstral', 'melody_tcae', 'melody_pitch'}: the two vectors and
        the parts of each."""
        return {k: v[0] for k, v in self.embed_many([log_mel], [track]).items()}

    def embed_many(self, log_mels: list[np.ndarray],
                   tracks: list[np.ndarray | None] | None = None) -> dict[str, np.ndarray]:
        """Several songs at once (``tracks``: each song's f0 track or None, as in `embed`): the parts of
        `embed_parts` -> [len(log_mels), dim] each.

        The same vectors as one `embed_parts` per song (tested), in fewer, fuller forward passes: on CPU the
        per-call overhead of small convolutions is most of the cost of one song, on a GPU all of it.
        """
        mels, heard, sigs = [], [], []
        for log_mel in log_mels:
            mel = np.asarray(log_mel, dtype=np.float32)
            if mel.ndim != 2 or mel.shape[0] != self.encoder.cfg.n_mels or mel.shape[1] < 1:
                raise ValueError(f"expected a log-mel [{self.encoder.cfg.n_mels}, frames], got {mel.shape}")
            sigs.append(cepstral.song_signature(mel, self.timbre))  # the real frames, before any padding
            heard.append(loudness.loud_view(mel, self.encoder_loud_fraction))  # _crops pads it if short
            mels.append(_padded(mel, self.crop))
        enc = timbre_batch(self.encoder, heard, self.crop, self.device, hop=self.hop)
        sig = np.stack(sigs)
        used = self.whitening.apply(sig) if self.whitening is not None else sig
        return {"timbre": cepstral.fuse(enc, used, self.timbre), "encoder": enc, "cepstral": sig,
                **melody_parts(self.tcae, mels, tracks or [None] * len(mels), self.device, self.frame_rate,
                               self.melody, self.mel_centres_hz)}


def songs_per_batch(device: torch.device) -> int:
    """Songs embedded together: enough to fill the device, few enough that a batch of 48 x 7501 mels and
    its activations stay small (CPU 8 songs ~ 0.2 GB; CUDA 64 songs ~ 2 GB)."""
    return 64 if device.type == "cuda" else 8


def _read_mels(songs: list[data.Song]) -> list[tuple[data.Song, tuple[np.ndarray, np.ndarray | None] | Exception]]:
    """Each song's (mel, f0 track or None when prepare stored none), or why it could not be read."""
    out: list[tuple[data.Song, tuple[np.ndarray, np.ndarray | None] | Exception]] = []
    for s in songs:
        try:
            mel = np.load(s.path)
            track = np.load(s.pitch) if s.pitch is not None else None
            if track is not None and (track.ndim != 2 or track.shape[0] != 2 or track.shape[1] != mel.shape[-1]):
                raise ValueError(f"{s.pitch} holds {track.shape}, not the [2, {mel.shape[-1]}] f0 track of its mel")
            out.append((s, (mel, track)))
        except (OSError, ValueError) as e:
            out.append((s, e))
    return out


def embed_project(project: project_mod.Project, cfg: Any = None, device: str | torch.device = "auto",
                  progress: Callable[..., None] | None = None, batch: int | None = None) -> dict[str, Any]:
    """Embed every `ok` catalog song; write embeddings/{timbre,melody,encoder,cepstral}.npy, ids.csv and
    meta.json (last). Model settings come from the checkpoints, the timbre join and the melody beat from
    ``cfg.timbre`` / ``cfg.melody`` (default: vocal.yaml). ``batch`` songs go through the models together
    (default: `songs_per_batch`); the next batch's mels are read from disk meanwhile.

    A song whose mel cannot be read is skipped and listed in the summary's ``failed``.
    """
    from concurrent.futures import ThreadPoolExecutor

    cfg = cfg or project.load_config()
    tb = cfg.timbre
    emb = Embedder.from_project(project, device, timbre=tb, melody=cfg.melody, whitening=False)
    songs = data.catalog_songs(project)
    untracked = [s.song_id for s in songs if s.pitch is None]
    if untracked and cfg.melody.pitch_weight > 0:
        raise MissingArtifact(f"{len(untracked)} of {len(songs)} songs have no f0 track in {project.pitch} (e.g. "
                              f"{untracked[0]}; prepared by an older vocal), which the melody vector reads; rerun "
                              "'vocal prepare SONGS_DIR': it redoes only those songs. Or set melody.pitch_weight: 0 "
                              "in vocal.yaml for the latent's profile alone. Nothing was changed")
    if progress:
        progress(advance=0, total=max(len(songs), 1))
    ids, failed = [], []
    cols: dict[str, list[np.ndarray]] = {k: [] for k in PARTS}
    size = max(1, batch or songs_per_batch(emb.device))
    chunks = [songs[i:i + size] for i in range(0, len(songs), size)]
    with ThreadPoolExecutor(1) as reader:
        ahead = reader.submit(_read_mels, chunks[0]) if chunks else None
        for c in range(len(chunks)):
            got = ahead.result() if ahead else []
            ahead = reader.submit(_read_mels, chunks[c + 1]) if c + 1 < len(chunks) else None
            good = []
            for s, mel in got:
                if isinstance(mel, Exception):
                    failed.append({"song_id": s.song_id, "reason": f"{type(mel).__name__}: {mel}"})
                else:
                    good.append((s, mel))
            try:
                parts = emb.embed_many([m for _, (m, _) in good], [t for _, (_, t) in good]) if good else {}
            except ValueError:  # one malformed mel: find it song by song
                parts = {}
                for s, (m, t) in good:
                    try:
                        one = emb.embed_parts(m, t)
                    except ValueError as e:
                        failed.append({"song_id": s.song_id, "reason": f"{type(e).__name__}: {e}"})
                    else:
                        ids.append(s.song_id)
                        for k in PARTS:
                            cols[k].append(one[k][None])
                good = []
            for k in PARTS if good else ():
                cols[k].append(parts[k])
            ids.extend(s.song_id for s, _ in good)
            if progress:
                progress(advance=len(got))
    if not ids:  # never replace good embeddings with an empty set
        why = f"; the first failure: {failed[0]['song_id']}: {failed[0]['reason']}" if failed else ""
        raise MissingArtifact(f"no song could be embedded ({len(songs)} 'ok' songs in {project.catalog}{why}); "
                              f"the embeddings in {project.embeddings} are left as they were; run 'vocal "
                              "prepare SONGS_DIR' first")
    dims = {"timbre": emb.encoder.cfg.embedding_dim + cepstral.dim(tb), "encoder": emb.encoder.cfg.embedding_dim,
            "cepstral": cepstral.dim(tb), "melody": 0, "melody_tcae": 0, "melody_pitch": 0}
    arrays = {k: np.concatenate(v).astype(np.float32) if v else np.zeros((0, dims[k]), np.float32)
              for k, v in cols.items()}
    out = project.embeddings
    singer_of = {s.song_id: s.singer for s in songs}
    whitening = normalise_timbre(arrays, [singer_of[i] for i in ids], tb, out)
    for k, a in arrays.items():
        project_mod.save_npy(out / f"{k}.npy", a)
    project_mod.write_csv(out / "ids.csv", [{"row": i, "song_id": s} for i, s in enumerate(ids)], IDS_FIELDS)
    meta = {"checkpoints": emb.checkpoint_hashes, "timbre": cepstral.settings(tb),
            "melody": melody_settings(cfg.melody), "n": len(ids),
            "timbre_dim": int(arrays["timbre"].shape[1]), "melody_dim": int(arrays["melody"].shape[1]),
            "failed": failed, "encoder_positives": emb.encoder_positives,
            "whitening": whitening,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "catalog": project_mod.file_digest(project.catalog)}
    project_mod.write_json(out / "meta.json", meta)  # written last: marks a complete set
    return {k: meta[k] for k in ("n", "timbre_dim", "melody_dim", "checkpoints", "failed")} | {
        "dir": str(out)}


def normalise_timbre(arrays: dict[str, np.ndarray], singers: list[str], tb: TimbreConfig,
                     out: Path) -> dict[str, Any] | None:
    """Learn the catalog's signature normalisation from ``arrays['cepstral']`` and each row's singer,
    re-join ``arrays['timbre']`` with it (in place) and store it in ``out``; -> what meta.json records of
    it (None: off in vocal.yaml, or nothing to learn from, and the timbre vectors stay as they are)."""
    white = cepstral.within_singer(arrays["cepstral"], singers, tb.within_singer_shrink) if tb.within_singer else None
    if white is None:
        return None
    arrays["timbre"] = cepstral.fuse(arrays["encoder"], white.apply(arrays["cepstral"]), tb)
    project_mod.save_npy(out / WHITENING, np.vstack([white.mean[None], white.transform]))
    return {"singers": white.singers, "songs": white.songs, "digest": project_mod.file_digest(out / WHITENING)}


def load_whitening(project: project_mod.Project) -> cepstral.Whitening | None:
    """The signature normalisation `vocal embed` learned from this catalog; None when it learned none (off
    in vocal.yaml, fewer than 2 singers with 2 songs) or nothing is embedded yet."""
    d = project.embeddings
    if not (d / "meta.json").is_file():
        return None
    meta = project_mod.read_json(d / "meta.json", "run 'vocal embed'")
    rec = meta.get("whitening") if isinstance(meta, dict) else None
    if not rec:
        return None
    path = d / WHITENING
    if not path.is_file() or project_mod.file_digest(path) != rec.get("digest"):
        raise StaleArtifact(f"{path} is missing or is not the one {d / 'meta.json'} was made with; run 'vocal embed'")
    a = project_mod.load_npy(path, "run 'vocal embed'")
    return cepstral.Whitening(a[0], a[1:], int(rec["singers"]), int(rec["songs"]))


@dataclass
class Embeddings:
    ids: list[str]
    timbre: np.ndarray  # [N, Dt] float32, rows L2-normalised
    melody: np.ndarray  # [N, Dm] float32, rows L2-normalised
    meta: dict
    parts: dict[str, np.ndarray] = field(default_factory=dict)  # the timbre vector's 'encoder' / 'cepstral'


def load_embeddings(project: project_mod.Project) -> Embeddings:
    """The project's embeddings; refuses missing, damaged or stale ones (made by other checkpoints)."""
    d = project.embeddings
    files = [d / "meta.json", d / "timbre.npy", d / "melody.npy", d / "ids.csv"]
    missing = [f.name for f in files if not f.exists()]
    if missing:
        raise MissingArtifact(f"no embeddings in {d} ({', '.join(missing)} missing); run 'vocal embed'")
    meta = project_mod.read_json(files[0], "run 'vocal embed'")
    if not isinstance(meta, dict):
        raise StaleArtifact(f"{files[0]} is damaged (not a JSON object); run 'vocal embed'")
    current = {}
    for t, spec in TASKS.items():
        p = project.checkpoint(t, "best")
        if not p.exists():
            raise MissingArtifact(f"no {t} model at {p}; run '{spec.train_command}', then 'vocal embed'")
        current[t] = project_mod.file_digest(p)
    made_by = meta.get("checkpoints", {})
    if made_by != current:
        what = ", ".join(f"{t} {made_by.get(t, '?')} -> {current[t]}" for t in TASKS
                         if made_by.get(t) != current[t])
        raise StaleArtifact(f"embeddings in {d} were made by other checkpoints ({what}); run 'vocal embed'")
    cfg = project.load_config()
    want = cepstral.settings(cfg.timbre)
    if meta.get("timbre") != want:
        raise StaleArtifact(f"embeddings in {d} were made with timbre settings {meta.get('timbre')}, vocal.yaml "
                            f"now says {want}; run 'vocal embed'")
    want_m = melody_settings(cfg.melody)
    if meta.get("melody") != want_m:
        raise StaleArtifact(f"embeddings in {d} were made with melody settings {meta.get('melody')}, this vocal "
                            f"and vocal.yaml say {want_m}; run 'vocal embed'")
    ids = [r["song_id"] for r in project_mod.read_csv(files[3], required=("song_id",), fix="run 'vocal embed'")]
    timbre, melody = (project_mod.load_npy(f, "run 'vocal embed'") for f in files[1:3])
    parts = {k: project_mod.load_npy(d / f"{k}.npy", "run 'vocal embed'")
             for k in ("encoder", "cepstral", "melody_tcae", "melody_pitch") if (d / f"{k}.npy").exists()}
    if not all(len(ids) == len(a) for a in (timbre, melody, *parts.values())):
        raise StaleArtifact(f"embeddings in {d} are inconsistent ({len(ids)} ids, {len(timbre)} timbre, "
                            f"{len(melody)} melody rows); run 'vocal embed'")
    return Embeddings(ids, timbre, melody, meta, parts)
