"""Every setting of a project, with its default: the only place defaults live.

vocal.yaml mirrors these dataclasses section by section. Loading is strict: an unknown key or a value of
the wrong type is a ConfigError naming the key, because a typo silently ignored costs a training run.
Field metadata carries the unit/help text that is written as a comment into vocal.yaml.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vocalcli.errors import ConfigError

SEPARATION_METHODS = ("auto", "demucs", "harmonic", "repet", "none")
"""prepare.separate / --separate (vocalcli.separation)."""
ROLES = ("pos", "neg", "none")
"""What a contrastive transformation is: positive view, negative, or off."""
POSITIVES = ("song", "singer", "signature")
"""contrastive.positives: where a crop's positive view comes from."""
INPUT_NORMS = ("crop", "band")
"""contrastive.input_norm: what the timbre encoder subtracts from a crop (vocalcli.models.encoder)."""
RESIDUE_NEGATIVES = ("none", "shared", "own")
"""contrastive.residue_negatives: which band a negative key carries (vocalcli.data.ResiduePlan)."""
GENDER_FEATURES = ("pitch_cepstral", "pitch", "timbre", "mel")
"""gender.features / classify-gender --features (vocalcli.gender)."""
PROJECTIONS = ("tsne", "pca")
"""2-D maps of the embeddings: report.map_method / plot --method (vocalcli.plot.project_2d)."""


def opt(default: Any, help: str, choices: tuple[str, ...] | None = None, **kw: Any) -> Any:
    """A config field with its comment (units!) and, for strings, the allowed values."""
    meta = {"help": help, "choices": choices}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda d=default: typing.cast(Any, type(d)(d)), metadata=meta)
    return field(default=default, metadata=meta, **kw)


@dataclass
class AudioConfig:
    sample_rate: int = opt(16000, "Hz; every song is resampled to this rate")
    n_fft: int = opt(512, "samples per FFT frame (32 ms at 16 kHz)")
    win_length: int = opt(512, "samples in the Hann window")
    hop_length: int = opt(256, "samples between frames (16 ms at 16 kHz)")
    n_mels: int = opt(48, "mel bands")
    fmin: float = opt(0.0, "Hz, lowest mel band edge")
    fmax: float = opt(8000.0, "Hz, highest mel band edge (<= sample_rate / 2)")
    start_s: float = opt(30.0, "seconds; start of the analysed window in each song")
    end_s: float = opt(150.0, "seconds; end of the window; shorter songs are 'too_short'")
    log_floor: float = opt(1e-6, "power floor added before the natural log of the mel")

    @property
    def n_frames(self) -> int:
        """Frames of a full window: 1 + samples // hop (centred STFT) = 7501 for the defaults."""
        return 1 + round((self.end_s - self.start_s) * self.sample_rate) // self.hop_length

    @property
    def frame_rate(self) -> float:
        """Frames per second."""
        return self.sample_rate / self.hop_length


@dataclass
class PrepareConfig:
    separate: str = opt(
        "auto", "MR removal: auto (demucs if usable, else harmonic), demucs, harmonic, repet, none",
        choices=SEPARATION_METHODS,
    )
    workers: int = opt(0, "parallel processes; 0 = number of CPUs")
    silence_db: float = opt(-60.0, "dBFS; a window whose RMS is below this is 'silent'")
    residue: bool = opt(False, "also store the residue mel (mixture minus vocal estimate, residues/) when MR "
                               "removal runs, for train-contrastive to lay other songs' residues over its views "
                               "(contrastive.residue_*); off: with the encoder reading the loudest half, borrowing "
                               "lowered voices it did not train on from 0.756 to 0.610 (docs/quality.md)")


@dataclass
class SplitConfig:
    train: float = opt(0.7, "fraction of each singer's songs for training")
    val: float = opt(0.15, "fraction for validation")
    test: float = opt(0.15, "fraction for testing")


@dataclass
class BalanceConfig:
    songs_per_singer: int = opt(30, "songs kept per singer; singers with fewer are dropped")
    holdout_singers: int = opt(0, "singers put entirely into the test split (unseen-singer checks)")
    holdout: list = opt([], "singers (by name) put entirely into the test split: voices no training and no "
                            "choice sees, for vocal evaluate's _unseen numbers; overrides holdout_singers")
    split: SplitConfig = field(default_factory=SplitConfig)


@dataclass
class TrainConfig:
    """training loop settings (each model has its own copy so they can differ)"""

    epochs: int = opt(30, "passes over the training songs")
    batch_size: int = opt(32, "crops per step on CPU/MPS (the batch lr is set for)")
    gpu_batch_size: int = opt(0, "crops per step on CUDA; 0 = auto: 4 x batch_size, at most the training "
                                 "songs; lr is scaled by sqrt(gpu batch / batch_size)")
    lr: float = opt(1e-3, "peak learning rate (AdamW) at batch_size, cosine decay after warmup")
    weight_decay: float = opt(1e-4, "AdamW weight decay")
    warmup_steps: int = opt(100, "linear LR warmup steps (at least)")
    warmup_fraction: float = opt(0.02, "linear LR warmup as a fraction of the run's steps, if longer")
    grad_clip: float = opt(1.0, "max gradient norm; 0 = off")
    steps_per_epoch: int = opt(0, "steps per epoch; 0 = one pass: one crop of every training song")
    min_steps: int = opt(0, "with steps_per_epoch 0: fewest steps of a run; a small library's epochs are "
                            "lengthened (several passes) to reach it")
    workers: int = opt(-1, "DataLoader worker processes; -1 = auto: none on CPU, min(8, CPUs - 1) on CUDA")
    compile: bool = opt(False, "torch.compile the model for training (off: not measured to pay yet)")

    def batch_for(self, device_type: str, n_train: int, world: int = 1) -> int:
        """Crops per step per process on ``device_type``: batch_size, or on CUDA gpu_batch_size (auto: 4x
        batch_size, never more than one pass of the training songs needs, never below batch_size)."""
        if device_type != "cuda":
            return self.batch_size
        if self.gpu_batch_size > 0:
            return self.gpu_batch_size
        return max(self.batch_size, min(4 * self.batch_size, n_train // max(world, 1)))

    def lr_for(self, batch: int) -> float:
        """Peak lr for ``batch`` crops per step: ``lr`` at batch_size, square-root scaled (Adam) otherwise."""
        return self.lr * (batch / self.batch_size) ** 0.5

    def loader_workers(self, device_type: str, cpus: int) -> int:
        """workers, with -1 resolved: reading crops in parallel pays only when an accelerator waits."""
        if self.workers >= 0:
            return self.workers
        return max(0, min(8, cpus - 1)) if device_type == "cuda" else 0


@dataclass
class ContrastiveConfig:
    pitch_shift: str = opt("neg", "pitch shift as pos(itive view), neg(ative), or none",
                           choices=ROLES)
    time_stretch: str = opt("neg", "time stretch as pos, neg, or none", choices=ROLES)
    crop_s: float = opt(5.0, "seconds per random crop (313 frames at 16 kHz / hop 256)")
    semitones: float = opt(3.0, "max |pitch shift| in semitones")
    min_semitones: float = opt(1.0, "min |pitch shift| in semitones of a negative view")
    stretch_factors: list = opt([0.65, 1.70], "tempo factors for time stretch (>1 = faster)")
    temperature: float = opt(0.07, "InfoNCE temperature")
    queue_size: int = opt(4096, "memory-bank negatives (MoCo queue); 0 = in-batch negatives only")
    momentum: float = opt(0.99, "EMA momentum of the key encoder that fills the queue")
    embedding_dim: int = opt(128, "size of the timbre embedding")
    channels: int = opt(16, "conv channels of the encoder's first block (doubled per block, max x4)")
    blocks: int = opt(4, "conv blocks of the encoder; each halves frequency and time")
    time_pool: int = opt(2, "mel frames averaged before the convs (32 ms steps are fine for timbre, 2x cheaper)")
    input_norm: str = opt("crop", "what the encoder subtracts from a crop: crop = its mean (loudness), band = each "
                          "mel band's mean over the crop (also a steady colouring, e.g. a band's leftovers)",
                          choices=INPUT_NORMS)
    time_kernel: int = opt(1, "frames each conv kernel spans in time: 3, or 1 = the encoder reads each frame's "
                              "spectrum alone and only its pooling spans time (docs/quality.md)")
    teacher_weight: float = opt(0.5, "share of each crop's InfoNCE target given to other training songs, by "
                                    "how alike their cepstral signatures are (no labels; softmax at "
                                    "teacher_temperature); 0 = only its own song; used with positives: song "
                                    "(docs/quality.md)")
    teacher_temperature: float = opt(0.1, "temperature of that softmax over signature cosine similarities")
    loud_fraction: float = opt(0.5, "the encoder reads only the loudest fraction of a song's frames, joined in "
                                    "time order, in training and when embedding (where the voice rests, a "
                                    "vocal estimate is mostly leftover band); 1 = every frame")
    positives: str = opt("song", "a crop's positive view: song = another crop of the same song (self-supervised), "
                         "signature = a crop of the song whose cepstral signature is mutually its nearest (no "
                         "labels; other songs stay self-paired), singer = of another song of the same singer "
                         "(the singer folders as labels; vocal evaluate then scores singer-ID only on songs "
                         "the encoder never trained on)", choices=POSITIVES)
    residue_none: float = opt(0.25, "probability that a view gets no borrowed residue (what MR removal took out "
                                    "of another song, stored by prepare); 1 = never borrow")
    residue_db: list = opt([-12.0, 0.0], "dB range of a borrowed residue's level, relative to its level in "
                                         "its own mixture")
    reverb_none: float = opt(1.0, "probability that a view gets no random room tail (mel-domain reverb); "
                                  "1 = off")
    reverb_s: list = opt([0.3, 1.6], "RT60 range of the random room tail, seconds")
    reverb_db: list = opt([-12.0, -3.0], "level range of the room tail relative to the dry voice, dB")
    residue_negatives: str = opt("shared", "what the key of crop i carries: none = a residue of its own draw, "
                                 "shared = the band laid over crop i-1's anchor, own = crop i-1's own song's "
                                 "residue (the band that leaks into its vocal estimate)",
                                 choices=RESIDUE_NEGATIVES)
    extract_hop_s: float = opt(2.5, "seconds between crops when embedding a whole song")
    eval_crops: int = opt(8, "crops per song for the validation kNN singer-ID accuracy")
    eval_songs: int = opt(512, "at most this many training songs (references) and val songs (queries) in "
                               "that validation, spread evenly over the singers; 0 = all")
    # an epoch is one pass over the training songs (3,150 of the seed's 4,500 -> 98 steps of 32); a 35-song
    # train split would get 1 step an epoch (30 in all, the LR never leaving warmup), so min_steps makes
    # each of its epochs 4 steps: 120 steps, warmup 20, as measured in docs/quality.md
    train: TrainConfig = field(default_factory=lambda: TrainConfig(warmup_steps=20, min_steps=120))


@dataclass
class TCAEConfig:
    channels: int = opt(48, "residual channels")
    latent_channels: int = opt(32, "channels of the melody latent")
    layers_per_stack: int = opt(6, "dilated layers per stack; dilations 1, 2, 4, ...")
    stacks: int = opt(2, "stacks of dilated layers in encoder and in decoder")
    kernel_size: int = opt(2, "causal conv kernel size")
    downsample: int = opt(4, "time downsampling of the latent (frames per latent step)")
    crop_s: float = opt(20.0, "seconds per training crop (0 = whole songs)")
    loss: str = opt("l1", "reconstruction loss on normalised log-mel", choices=("l1", "mse"))
    ssm_weight: float = opt(3.0, "weight of the self-similarity term: latent frames must keep the "
                                 "input's frame-to-frame cosine similarities (0 = plain autoencoder)")
    shift_semitones: float = opt(0.0, "max |pitch shift| in semitones of the transposed training view "
                                      "(0 = no view)")
    shift_weight: float = opt(0.0, "weight of the transposition term (needs ssm_weight > 0): the transposed "
                                   "view's latent must keep the original's self-similarity")
    # 35 training songs / batch 8 would be 4 steps an epoch; min_steps makes it 10 steps x 60 epochs = 600
    # steps (~2 min on one CPU core since the stacks run at the latent rate); the seed's 3,150 training
    # songs are 393 steps an epoch
    train: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=60, batch_size=8, warmup_steps=20,
                                                                    min_steps=600))


@dataclass
class GenderConfig:
    features: str = opt("pitch_cepstral", "classifier input: pitch_cepstral (sung register + cepstral "
                        "correlation signature), pitch (register only), timbre vectors, or mel statistics",
                        choices=GENDER_FEATURES)
    val_singers: float = opt(0.25, "fraction of labelled singers held out for evaluation")
    c: float = opt(1.0, "inverse L2 regularisation of the logistic regression")
    pool_singers: bool = opt(True, "one gender per singer: the songs of an unlabelled catalog singer share the "
                                   "mean decision of all of them (a single file is classified alone)")


@dataclass
class TimbreConfig:
    """the song's timbre vector: contrastive embedding + cepstral correlation signature (vocalcli/cepstral.py)"""

    encoder_weight: float = opt(1.0, "weight of the contrastive encoder's embedding")
    cepstral_weight: float = opt(4.0, "weight of the cepstral correlation signature (robust to what MR "
                                      "removal leaves of the accompaniment; 0 = encoder only)")
    cepstra: int = opt(13, "cepstral coefficients whose correlations form the signature")
    loud_fraction: float = opt(0.5, "the signature uses the loudest fraction of the vocal estimate's frames "
                                    "(where the voice rests, the estimate is mostly leftover band); 1 = all")
    smooth_frames: int = opt(16, "frames the cepstra are averaged over before correlating (16 = 0.26 s at "
                                 "the default hop: syllable-rate formant movement); 1 = none")
    within_singer: bool = opt(True, "weigh the signature's directions by how little they vary between songs "
                                    "of one singer (learned at embed time from the catalog's singer folders; "
                                    "what the band and the melody change, not the voice); off = plain cosine")
    within_singer_shrink: float = opt(0.1, "how far that weighting is pulled towards none (0 = the catalog's "
                                           "estimate as it is, 1 = only centred on the catalog's mean)")


@dataclass
class MelodyConfig:
    """the song's melody vector: the TCAE latent's self-similarity profile, its lags counted in beats
    (vocalcli/models/tcae.py); the beat is found at embed time, so these need no retraining"""

    tempo_prior_bpm: float = opt(90.0, "centre of the tempo prior that picks the beat among its multiples "
                                       "(x2, x0.5); the corpus songs are sung at 70-120 bpm")
    tempo_prior_octaves: float = opt(0.5, "width of the tempo prior in octaves (smaller = the prior decides "
                                          "more often between a tempo and its double)")
    onset_max_hz: float = opt(1000.0, "the beat is read from changes of spectral shape in the mel bands below "
                                      "this (sung note changes); above it, drum residue dominates")
    pitch_weight: float = opt(4.0, "weight of the sung pitch's profile (pitch/<song_id>.npy, vocalcli/"
                                   "pitch_profile.py) joined to the TCAE latent's (weight 1); 0 = the latent only")
    pitch_loud_fraction: float = opt(0.7, "the pitch profile reads this louder fraction of the frames (the "
                                          "tracker follows the band where the voice rests)")
    pitch_sigma: float = opt(1.0, "semitones; width of each frame's pitch-class bump in the pitch profile")


@dataclass
class IndexWeights:
    timbre: float = opt(1.0, "weight of the L2-normalised timbre embedding")
    melody: float = opt(0.5, "weight of the L2-normalised melody embedding")


@dataclass
class IndexConfig:
    weights: IndexWeights = field(default_factory=IndexWeights)
    n_trees: int = opt(50, "Annoy trees (more = better recall, bigger index)")
    search_k: int = opt(0, "Annoy nodes inspected per query; 0 = chosen for recall@10 >= 0.99")


@dataclass
class ReportConfig:
    """vocal report: the project page (clips, recommendations, map)"""

    clip_s: float = opt(10.0, "seconds per audio clip: the loudest stretch of the analysed window's voice")
    clip_kbps: float = opt(20.0, "Ogg Opus bitrate of each mono clip, kbit/s (20 = ~26 kB per 10 s clip)")
    top_k: int = opt(10, "recommendations (other singers' songs) shown and put in each song's playlist")
    map_method: str = opt("tsne", "2-D projection of the timbre map, as in vocal plot", choices=PROJECTIONS)
    songs_per_chunk: int = opt(100, "songs per lazily loaded data file of the page")


@dataclass
class Config:
    seed: int = opt(0, "one seed for numpy, torch, DataLoader, Annoy and splits")
    audio: AudioConfig = field(default_factory=AudioConfig)
    prepare: PrepareConfig = field(default_factory=PrepareConfig)
    balance: BalanceConfig = field(default_factory=BalanceConfig)
    contrastive: ContrastiveConfig = field(default_factory=ContrastiveConfig)
    tcae: TCAEConfig = field(default_factory=TCAEConfig)
    gender: GenderConfig = field(default_factory=GenderConfig)
    timbre: TimbreConfig = field(default_factory=TimbreConfig)
    melody: MelodyConfig = field(default_factory=MelodyConfig)
    index: IndexConfig = field(default_factory=IndexConfig)
    report: ReportConfig = field(default_factory=ReportConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _build(cls: type, data: Any, where: str) -> Any:
    """Build dataclass ``cls`` from ``data``, strictly; ``where`` is the dotted key for messages."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'vocal.yaml'}: expected a mapping of keys, got {data!r}")
    hints = _hints(cls)
    names = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(names))
    if unknown:
        key = f"{where}.{unknown[0]}" if where else unknown[0]
        raise ConfigError(
            f"unknown key '{key}' in vocal.yaml; known keys here: {', '.join(names)}"
        )
    kwargs = {}
    for name, value in data.items():
        key = f"{where}.{name}" if where else name
        kwargs[name] = _coerce(hints[name], value, key, names[name])
    obj = cls(**kwargs)
    return obj


def _coerce(tp: Any, value: Any, key: str, f: dataclasses.Field) -> Any:
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, key)
    bad = ConfigError(f"'{key}' must be {getattr(tp, '__name__', tp)}, got {value!r} in vocal.yaml")
    if tp is bool:
        if not isinstance(value, bool):
            raise bad
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad
        if not math.isfinite(value):  # .inf / .nan pass the type check and fail much later, per song
            raise ConfigError(f"'{key}' must be a finite number, got {value!r} in vocal.yaml")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise bad
        choices = f.metadata.get("choices")
        if choices and value not in choices:
            raise ConfigError(f"'{key}' must be one of {', '.join(choices)}; got {value!r} in vocal.yaml")
        return value
    if tp is list:
        if not isinstance(value, list):
            raise bad
        if any(isinstance(x, float) and not math.isfinite(x) for x in value):
            raise ConfigError(f"'{key}' must hold finite numbers, got {value!r} in vocal.yaml")
        return value
    return value


def validate(cfg: Config) -> Config:
    """Cross-field checks that types alone cannot express."""
    a = cfg.audio

    def need(ok: bool, key: str, msg: str) -> None:
        if not ok:
            raise ConfigError(f"'{key}' {msg} in vocal.yaml")

    need(0 <= cfg.seed < 2**32, "seed", "must be in [0, 2**32 - 1] (numpy, torch and Annoy all take it)")
    need(a.sample_rate > 0, "audio.sample_rate", "must be positive")
    need(a.n_fft > 0 and a.win_length <= a.n_fft, "audio.win_length", "must be <= audio.n_fft")
    need(a.hop_length > 0, "audio.hop_length", "must be positive")
    need(a.n_mels > 0, "audio.n_mels", "must be positive")
    need(0 <= a.fmin < a.fmax <= a.sample_rate / 2, "audio.fmax", "must satisfy fmin < fmax <= sample_rate/2")
    need(0 <= a.start_s < a.end_s, "audio.end_s", "must be greater than audio.start_s (>= 0)")
    need(a.log_floor > 0, "audio.log_floor", "must be positive")
    need(cfg.balance.songs_per_singer > 0, "balance.songs_per_singer", "must be positive")
    need(cfg.balance.holdout_singers >= 0, "balance.holdout_singers", "must be >= 0")
    need(all(isinstance(x, str) for x in cfg.balance.holdout), "balance.holdout", "must be a list of singer names")
    s = cfg.balance.split
    need(min(s.train, s.val, s.test) >= 0 and abs(s.train + s.val + s.test - 1) < 1e-6,
         "balance.split", "fractions must be >= 0 and sum to 1")
    need(cfg.prepare.workers >= 0, "prepare.workers", "must be >= 0")
    c = cfg.contrastive
    need(c.temperature > 0, "contrastive.temperature", "must be positive")
    need(c.crop_s > 0, "contrastive.crop_s", "must be positive")
    need(len(c.stretch_factors) > 0 and all(isinstance(x, (int, float)) and x > 0 for x in c.stretch_factors),
         "contrastive.stretch_factors", "must be a non-empty list of positive numbers")
    need(c.queue_size >= 0, "contrastive.queue_size", "must be >= 0")
    need(0 < c.loud_fraction <= 1, "contrastive.loud_fraction", "must be in (0, 1]")
    need(c.time_kernel in (1, 3), "contrastive.time_kernel", "must be 1 or 3")
    need(0 <= c.teacher_weight < 1, "contrastive.teacher_weight", "must be in [0, 1)")
    need(c.teacher_temperature > 0, "contrastive.teacher_temperature", "must be positive")
    need(0 <= c.residue_none <= 1, "contrastive.residue_none", "must be in [0, 1]")
    need(0 <= c.reverb_none <= 1, "contrastive.reverb_none", "must be in [0, 1]")
    need(len(c.reverb_s) == 2 and 0 < c.reverb_s[0] <= c.reverb_s[1], "contrastive.reverb_s",
         "must be [low, high] seconds, 0 < low <= high")
    need(len(c.reverb_db) == 2 and c.reverb_db[0] <= c.reverb_db[1], "contrastive.reverb_db",
         "must be [low, high] in dB, low <= high")
    need(len(c.residue_db) == 2 and all(isinstance(x, (int, float)) for x in c.residue_db)
         and c.residue_db[0] <= c.residue_db[1], "contrastive.residue_db", "must be [low, high] in dB, low <= high")
    need(0 <= c.min_semitones <= c.semitones, "contrastive.min_semitones", "must be in [0, semitones]")
    need(0 <= c.momentum < 1, "contrastive.momentum", "must be in [0, 1)")
    need(c.embedding_dim > 0 and c.channels > 0, "contrastive.embedding_dim/channels", "must be positive")
    need(c.blocks >= 1 and c.time_pool >= 1, "contrastive.blocks/time_pool", "must be >= 1")
    need(c.extract_hop_s > 0, "contrastive.extract_hop_s", "must be positive")
    need(c.eval_crops >= 1, "contrastive.eval_crops", "must be >= 1")
    need(c.eval_songs >= 0, "contrastive.eval_songs", "must be >= 0 (0 = all)")
    tc = cfg.tcae
    need(tc.downsample >= 1, "tcae.downsample", "must be >= 1")
    need(tc.kernel_size >= 2, "tcae.kernel_size", "must be >= 2")
    need(tc.channels > 0 and tc.latent_channels > 0, "tcae.channels/latent_channels", "must be positive")
    need(tc.layers_per_stack >= 1 and tc.stacks >= 1, "tcae.layers_per_stack/stacks", "must be >= 1")
    need(tc.crop_s >= 0, "tcae.crop_s", "must be >= 0 (0 = whole songs)")
    need(tc.ssm_weight >= 0, "tcae.ssm_weight", "must be >= 0")
    for sec in (f.name for f in dataclasses.fields(cfg) if hasattr(getattr(cfg, f.name), "train")):
        t: TrainConfig = getattr(cfg, sec).train
        need(t.epochs >= 0, f"{sec}.train.epochs", "must be >= 0")
        need(t.batch_size >= 2, f"{sec}.train.batch_size", "must be >= 2")
        need(t.lr > 0, f"{sec}.train.lr", "must be positive")
        need(t.warmup_steps >= 0 and t.grad_clip >= 0, f"{sec}.train.warmup_steps/grad_clip", "must be >= 0")
        need(t.steps_per_epoch >= 0 and t.min_steps >= 0, f"{sec}.train.steps_per_epoch/min_steps",
             "must be >= 0")
        need(t.gpu_batch_size == 0 or t.gpu_batch_size >= 2, f"{sec}.train.gpu_batch_size", "must be 0 or >= 2")
        need(0 <= t.warmup_fraction < 1, f"{sec}.train.warmup_fraction", "must be in [0, 1)")
        need(t.workers >= -1, f"{sec}.train.workers", "must be >= 0, or -1 for auto")
    tb = cfg.timbre
    need(tb.encoder_weight >= 0 and tb.cepstral_weight >= 0 and tb.encoder_weight + tb.cepstral_weight > 0,
         "timbre.encoder_weight/cepstral_weight", "must be >= 0 and not both 0")
    need(2 <= tb.cepstra <= cfg.audio.n_mels, "timbre.cepstra", f"must be in [2, audio.n_mels = {cfg.audio.n_mels}]")
    need(0 < tb.loud_fraction <= 1, "timbre.loud_fraction", "must be in (0, 1]")
    need(tb.smooth_frames >= 1, "timbre.smooth_frames", "must be >= 1")
    need(0 < tb.within_singer_shrink <= 1, "timbre.within_singer_shrink", "must be in (0, 1]")
    md = cfg.melody
    need(md.tempo_prior_bpm > 0 and md.tempo_prior_octaves > 0, "melody.tempo_prior_bpm/tempo_prior_octaves",
         "must be positive")
    need(md.onset_max_hz > cfg.audio.fmin, "melody.onset_max_hz", f"must be above audio.fmin = {cfg.audio.fmin}")
    need(md.pitch_weight >= 0, "melody.pitch_weight", "must be >= 0")
    need(0 < md.pitch_loud_fraction <= 1, "melody.pitch_loud_fraction", "must be in (0, 1]")
    need(md.pitch_sigma > 0, "melody.pitch_sigma", "must be > 0 semitones")
    w = cfg.index.weights
    need(w.timbre >= 0 and w.melody >= 0 and w.timbre + w.melody > 0, "index.weights",
         "must be >= 0 and not both 0")
    r = cfg.report
    need(0 < r.clip_s <= 60, "report.clip_s", "must be in (0, 60] seconds")
    need(6 <= r.clip_kbps <= 256, "report.clip_kbps", "must be in [6, 256] kbit/s (Opus' range)")
    need(r.top_k >= 1 and r.songs_per_chunk >= 1, "report.top_k/songs_per_chunk", "must be >= 1")
    return cfg


def from_dict(data: dict[str, Any] | None) -> Config:
    return validate(_build(Config, data or {}, ""))


def load(path: Path) -> Config:
    """Read vocal.yaml strictly (yaml.safe_load); missing keys take their defaults."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path} is not UTF-8 text (byte 0x{e.object[e.start]:02x} at offset {e.start}); "
                          "save it as UTF-8, or delete it to regenerate defaults") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        what = getattr(e, "problem", None) or " ".join(str(e).split())
        raise ConfigError(f"{path} is not valid YAML{where} ({what}); fix it or delete it to regenerate "
                          "defaults") from None
    try:
        return from_dict(data)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None


def override(cfg: Config, dotted: dict[str, Any]) -> Config:
    """Apply CLI overrides (``{"contrastive.train.epochs": 3}``) for one run; None values are ignored."""
    data = cfg.to_dict()
    for key, value in dotted.items():
        if value is None:
            continue
        node = data
        *parents, last = key.split(".")
        for p in parents:
            node = node[p]
        node[last] = value
    return from_dict(data)


def _yaml_scalar(v: Any) -> str:
    import yaml

    return yaml.safe_dump(v, default_flow_style=True).strip().removesuffix("...").strip()


def to_yaml(cfg: Config) -> str:
    """vocal.yaml text: every key with its value and a comment giving the unit or meaning."""
    lines = ["# vocal project settings. Every key is shown with its default; edit values, keep keys.",
             "# CLI flags override a value for one run. Unknown keys are an error.", ""]

    def emit(obj: Any, indent: int) -> None:
        for f in dataclasses.fields(obj):
            v = getattr(obj, f.name)
            pad = "  " * indent
            if dataclasses.is_dataclass(v):
                doc = (type(v).__doc__ or "").strip().splitlines()
                note = f"  # {doc[0]}" if doc and not doc[0].startswith(type(v).__name__) else ""
                lines.append(f"{pad}{f.name}:{note}")
                emit(v, indent + 1)
            else:
                help_ = f.metadata.get("help", "")
                lines.append(f"{pad}{f.name}: {_yaml_scalar(v)}" + (f"  # {help_}" if help_ else ""))

    emit(cfg, 0)
    return "\n".join(lines) + "\n"
