"""One training loop, `fit()`, shared by every trainer; each task brings a step function.

The loop owns what every trainer needs and nothing task-specific: deterministic per-epoch batches,
warmup + cosine LR, AMP only on CUDA, gradient clipping, ``no_grad`` validation, metrics to
``runs/<task>/<timestamp>/metrics.jsonl`` next to the resolved config, checkpoints
(``checkpoints/<task>/last.pt`` every epoch, ``best.pt`` when validation improves), resume from
``last.pt``, and DistributedDataParallel under ``torchrun`` (rank-sharded batches, rank-0-only writes).

A task (`ContrastiveTask`, `TCAETask`) holds its model(s) and data and implements ``step`` (one batch ->
loss), ``after_step`` (e.g. the MoCo key-encoder update) and ``validate`` (metrics with a ``score``,
higher is better).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from vocalcli import cepstral, checkpoint, data, losses, transforms
from vocalcli import project as project_mod
from vocalcli.config import Config, TimbreConfig, TrainConfig
from vocalcli.device import autocast, resolve_device, seed_everything, tune_for
from vocalcli.errors import CheckpointError, MissingArtifact
from vocalcli.models.encoder import EncoderConfig, TimbreEncoder
from vocalcli.models.tcae import TCAE, TCAEModelConfig, centre_bands, pool_frames, receptive_field_seconds
from vocalcli.tasks import TASKS

Log = Callable[[str], None]


# ----------------------------------------------------------------------------------------- helpers
def lr_at(step: int, total: int, peak: float, warmup: int) -> float:
    """Linear warmup to ``peak`` over ``warmup`` steps, then cosine decay to peak / 10 at ``total``."""
    if warmup > 0 and step < warmup:
        return peak * (step + 1) / warmup
    if total <= warmup:
        return peak
    p = min(1.0, (step - warmup) / max(1, total - warmup))
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * p)))


def dist_info() -> tuple[int, int]:
    """(rank, world size); joins the process group when started by torchrun (WORLD_SIZE > 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() and os.environ.get("VOCAL_DDP_BACKEND") != "gloo" \
            else "gloo"
        dist.init_process_group(backend)
    return dist.get_rank(), dist.get_world_size()


def is_rank0() -> bool:
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def _resume_key(cfg: Config, section: str, plan: Plan | None = None) -> dict[str, Any]:
    """What must match for last.pt to be continued: seed, audio, the task section minus what does not
    change the run (epochs, workers, compile), and the batch and lr actually used where the device
    changed them (a run begun on CUDA does not continue on CPU)."""
    sec = dataclasses.asdict(getattr(cfg, section))
    sec["train"] = {k: v for k, v in sec["train"].items() if k not in ("epochs", "workers", "compile")}
    key = {"seed": cfg.seed, "audio": dataclasses.asdict(cfg.audio), section: sec}
    if plan is not None and plan.batch != sec["train"]["batch_size"]:  # CUDA's batch: another run
        key["schedule"] = {"batch": plan.batch, "lr": plan.lr}
    return key


@dataclass(frozen=True)
class Plan:
    """The run's schedule, fixed before the first step from vocal.yaml, the library and the device.

    Why here and not in vocal.yaml: an epoch is one pass over the training songs, so the steps grow with
    the library (35 songs -> 4 contrastive steps an epoch via min_steps; 3,150 -> 98), and the batch
    grows with the device (CUDA: 4x, see TrainConfig.batch_for) without the user editing anything.
    """

    epochs: int
    steps_per_epoch: int
    batch: int  # crops per step per process
    world: int
    lr: float  # peak
    warmup: int  # steps
    n_train: int

    @property
    def total(self) -> int:
        return self.epochs * self.steps_per_epoch

    @property
    def looks(self) -> float:
        """Crops drawn per training song over the run."""
        return self.total * self.batch * self.world / max(self.n_train, 1)

    def describe(self, name: str) -> str:
        procs = f" x {self.world} processes" if self.world > 1 else ""
        return (f"{name}: {self.epochs} epochs x {self.steps_per_epoch} steps of {self.batch} crops{procs} = "
                f"{self.total:,} steps (~{self.looks:.0f} crops of each of {self.n_train:,} training songs); "
                f"peak lr {self.lr:.3g}, warm-up {self.warmup} steps")


def plan_for(tc: TrainConfig, n_train: int, device_type: str, world: int = 1) -> Plan:
    """The schedule of a run (pure): batch and lr for the device, steps per epoch, warm-up."""
    batch = tc.batch_for(device_type, n_train, world)
    steps = data.steps_per_epoch(n_train, batch, tc.steps_per_epoch, world)
    if tc.steps_per_epoch == 0 and tc.min_steps > 0 and tc.epochs > 0:
        steps = max(steps, -(-tc.min_steps // tc.epochs))
    total = steps * tc.epochs
    warmup = max(tc.warmup_steps, round(tc.warmup_fraction * total))
    return Plan(tc.epochs, steps, batch, world, tc.lr_for(batch), warmup, n_train)


def _duration(seconds: float) -> str:
    s = int(round(seconds))
    if s < 90:
        return f"{s} s"
    if s < 5400:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


BEFORE_ADDED = {"contrastive": {"loud_fraction": 1.0, "time_kernel": 3, "teacher_weight": 0.0}}
"""Settings added with a default other than what runs begun before them did: a last.pt without the key
had this meaning (the encoder read every frame before contrastive.loud_fraction existed, its kernels
spanned 3 frames before contrastive.time_kernel, and it had no teacher before contrastive.teacher_weight)."""


def _with_defaults(old: Any, default: Any) -> Any:
    """``old`` with the keys it lacks taken from ``default``: a setting added to vocal.yaml after a run
    started had its default's meaning in that run, so it must not block the resume."""
    if not (isinstance(old, dict) and isinstance(default, dict)):
        return old
    return {**default, **{k: _with_defaults(v, default.get(k)) for k, v in old.items()}}


def _filled(old_key: dict[str, Any], section: str) -> dict[str, Any]:
    """A last.pt's resume key with the settings it lacks as they were when its run began: `BEFORE_ADDED`,
    else today's defaults."""
    legacy = {k: v for k, v in BEFORE_ADDED.items() if k in old_key}
    return _with_defaults(_with_defaults(old_key, legacy), _resume_key(Config(), section))


@dataclass
class FitResult:
    task: str
    epochs: int  # completed epochs
    step: int  # completed optimizer steps
    metrics: dict[str, Any]  # last epoch: train_loss, validation metrics, ...
    best_score: float
    history: list[dict[str, Any]] = field(default_factory=list)
    run_dir: Path | None = None
    resumed_from: int | None = None  # epoch resumed from, None = fresh start
    notes: list[str] = field(default_factory=list)
    plan: Plan | None = None


# -------------------------------------------------------------------------------------------- fit
ETA_STEPS = 10
"""Steps timed (after the first, which pays for warm-up) before the ETA line; or ETA_SECONDS, if sooner."""
ETA_SECONDS = 20.0
SYNC_EVERY_CUDA = 25
"""Steps between reading losses back from the GPU: reading one waits for the GPU to finish, and while the
CPU waits it cannot queue the next steps' kernels (on CPU reading is free: every step)."""


class _StepLog:
    """Per-step losses kept on the device and read back every ``every`` steps (one sync for all), then
    written to metrics.jsonl and the progress bar; says the ETA once the first steps are timed."""

    def __init__(self, every: int, write: Callable[[dict[str, Any]], None],
                 progress: Callable[..., None] | None, say_eta: Callable[[int, float], None], total: int) -> None:
        self.every, self.write, self.progress, self.say_eta, self.total = every, write, progress, say_eta, total
        self.pending: list[tuple[int, float, int, torch.Tensor, dict[str, Any]]] = []
        self.eta_steps, self.eta_time, self.eta_said, self.flushes = 0, 0.0, False, 0
        self.start_epoch(0)

    def start_epoch(self, epoch: int) -> None:
        self.epoch, self.loss_sum, self.extra_sum = epoch, 0.0, {}
        self.window = time.perf_counter()

    def add(self, step: int, lr: float, n: int, loss: torch.Tensor, info: dict[str, Any]) -> None:
        self.pending.append((step, lr, n, loss, info))
        if len(self.pending) >= self.every:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        now = time.perf_counter()
        dt = now - self.window  # training time only: the window restarts after each validation
        rate = sum(p[2] for p in self.pending) / max(dt, 1e-9)
        self.window = now
        for st, lr, _n, lt, info in self.pending:
            lv = float(lt)
            vals = {k: float(v) for k, v in info.items()}
            self.loss_sum += lv
            for k, v in vals.items():
                self.extra_sum[k] = self.extra_sum.get(k, 0.0) + v
            self.write({"type": "step", "epoch": self.epoch, "step": st, "loss": lv, "lr": lr,
                        "samples_per_s": rate, **vals})
            if self.progress:
                self.progress(advance=1, loss=lv, rate=rate, **vals)
        step = self.pending[-1][0]
        if self.flushes:  # the first read-back pays for warm-up (allocations, autotuning, compile)
            self.eta_steps += len(self.pending)
            self.eta_time += dt
        self.flushes += 1
        self.pending.clear()
        if not self.eta_said and self.eta_steps and (self.eta_steps >= ETA_STEPS or self.eta_time >= ETA_SECONDS
                                                     or step >= self.total):
            self.eta_said = True
            self.say_eta(step, self.eta_steps / max(self.eta_time, 1e-9))


def fit(task: Task, cfg: Config, device: torch.device, *, checkpoints: Path | None, run_root: Path | None,
        resume: bool | None = None, progress: Callable[..., None] | None = None, log: Log | None = None,
        bf16_on_cpu: bool = False) -> FitResult:
    """Train ``task`` for its configured epochs; resume from ``checkpoints/last.pt`` when allowed.

    resume: None = continue when last.pt matches the config (else start fresh, saying why);
    True = must continue (a mismatch is a CheckpointError listing what differs); False = start fresh.
    Before the first step ``log`` gets the plan (steps, batch, lr) and, after a few steps, an ETA.
    """
    tc: TrainConfig = task.train_cfg
    rank, world = task.rank, task.world
    say = (log or (lambda _m: None)) if rank == 0 else (lambda _m: None)
    model: nn.Module = task.model
    plan = plan_for(tc, task.n_train, device.type, world)
    opt = torch.optim.AdamW(model.parameters(), lr=plan.lr, weight_decay=tc.weight_decay)
    steps, total = plan.steps_per_epoch, plan.total
    start_epoch, step, best, metrics = 0, 0, -math.inf, {}
    result = FitResult(task.name, 0, 0, {}, -math.inf, plan=plan)
    key = _resume_key(cfg, task.section, plan)

    last = checkpoints / "last.pt" if checkpoints else None
    if resume is not False and last is not None and last.exists():
        ck = checkpoint.load(last, task.name, TASKS[task.name].train_command if task.name in TASKS else "")
        old_key = ck.get("extra", {}).get("resume_key", {})
        old_key = _filled(old_key, task.section) if old_key else old_key
        diffs = checkpoint.config_differences(old_key, key)
        if diffs:
            msg = f"{last} was trained with other settings ({'; '.join(diffs[:5])})"
            if resume:
                raise CheckpointError(msg + "; pass --no-resume to start over, or restore vocal.yaml")
            result.notes.append(msg + "; starting fresh")
            say(result.notes[-1])
        else:
            model.load_state_dict(ck["model"])
            task.load_extra(ck["extra"])
            if ck.get("optimizer"):
                opt.load_state_dict(ck["optimizer"])
            start_epoch, step = ck["epoch"], ck["step"]
            metrics = ck.get("metrics", {})
            best = float(metrics.get("best_score", -math.inf))
            result.resumed_from = start_epoch
            say(f"resuming {task.name} from {last} at epoch {start_epoch}/{tc.epochs} (step {step})")
    elif resume and (last is None or not last.exists()):
        say(f"nothing to resume for {task.name}; starting fresh")

    if start_epoch < tc.epochs:
        say(plan.describe(task.name))
        if plan.looks < 1:
            result.notes.append(
                f"{task.name}: {plan.total * plan.batch * world:,} crops for {plan.n_train:,} training songs: most "
                f"songs are never seen; set {task.section}.train.steps_per_epoch: 0 in vocal.yaml (one pass "
                "an epoch)")
            say(result.notes[-1])

    run_dir = None
    if run_root is not None and rank == 0 and start_epoch < max(tc.epochs, 1):
        run_dir = run_root / datetime.now().strftime("%Y%m%d-%H%M%S-%f")
        project_mod.write_json(run_dir / "config.json", {"config": cfg.to_dict(), "world_size": world,
                                                         "device": str(device), "steps_per_epoch": steps,
                                                         "plan": dataclasses.asdict(plan),
                                                         "model_config": task.model_config,
                                                         "resumed_from_epoch": result.resumed_from})
    result.run_dir = run_dir

    tune_for(device)
    train_model: nn.Module = model
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        train_model = DDP(model, device_ids=[device.index] if device.type == "cuda" else None)
    if tc.compile:
        train_model = torch.compile(train_model)  # type: ignore[assignment]

    def save(which: str, epoch: int) -> None:
        if checkpoints is None or rank != 0:
            return
        extra = task.extra_state()
        extra["resume_key"] = key
        checkpoint.save(checkpoints / f"{which}.pt", kind=task.name, model_config=task.model_config,
                        model=model.state_dict(), optimizer=opt.state_dict(), epoch=epoch, step=step,
                        metrics={**metrics, "best_score": best}, config=cfg.to_dict(), extra=extra)

    def write_metrics(row: dict[str, Any]) -> None:
        if run_dir is not None:
            with open(run_dir / "metrics.jsonl", "a", encoding="utf-8") as fh:
                fh.write(json.dumps(row, default=float) + "\n")

    if result.resumed_from is not None and rank == 0 and checkpoints is not None:
        # A kill between writing last.pt and best.pt leaves best.pt an epoch behind for good: the epoch
        # resumed after is never validated again. last.pt holds that epoch's model and score, so re-judge.
        best_path = checkpoints / "best.pt"
        held = -math.inf
        if best_path.exists():
            held = float(checkpoint.load(best_path, task.name).get("metrics", {}).get("score", -math.inf))
        if held < best and float(metrics.get("score", -math.inf)) >= best:
            save("best", start_epoch)
            say(f"{best_path} was older than the best epoch ({start_epoch}); rewrote it from {last}")

    if progress:
        progress(advance=0, total=max(total, 1))
        if step:
            progress(advance=min(step, total))

    if tc.epochs == 0 and start_epoch == 0 and rank == 0:
        # an untrained model is still a valid (tiny, fast) artefact: every downstream path can run
        metrics = task.validate(float("nan"))
        best = float(metrics["score"])
        save("last", 0)
        save("best", 0)

    scaler = torch.amp.GradScaler("cuda", enabled=device.type == "cuda" and not torch.cuda.is_bf16_supported())
    workers = min(tc.loader_workers(device.type, max(1, (os.cpu_count() or 1) // world)), steps)
    logbook = _StepLog(1 if device.type == "cpu" else SYNC_EVERY_CUDA, write_metrics, progress,
                       lambda step, sps: say(
                           f"{task.name}: {sps:.2f} steps/s ({sps * plan.batch * world:,.0f} crops/s): about "
                           f"{_duration((total - step) / sps)} for the remaining {total - step:,} steps, plus "
                           "validation after each epoch"), total)
    for epoch in range(start_epoch, tc.epochs):
        model.train()
        order = data.epoch_order(task.n_train, plan.batch, steps, cfg.seed, epoch, rank, world)
        batches = task.batches(order, epoch)
        gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + epoch * 101 + rank)
        t0, seen = time.perf_counter(), 0
        logbook.start_epoch(epoch)
        for batch in data.loader(batches, workers, pin=device.type == "cuda"):
            lr = lr_at(step, total, plan.lr, plan.warmup)
            for g in opt.param_groups:
                g["lr"] = lr
            with autocast(device, bf16_on_cpu):
                loss, info = task.step(train_model, batch, gen)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if tc.grad_clip > 0:
                scaler.unscale_(opt)
                nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
            scaler.step(opt)
            scaler.update()
            task.after_step()
            step += 1
            n = batch["idx"].shape[0] * world
            seen += n
            logbook.add(step, lr, n, loss.detach(), info)
        logbook.flush()
        t_train = time.perf_counter() - t0
        k_steps = max(len(batches), 1)
        train_loss = logbook.loss_sum / k_steps
        metrics = {"epoch": epoch + 1, "step": step, "train_loss": train_loss,
                   **{f"train_{k}": v / k_steps for k, v in logbook.extra_sum.items()},
                   "samples_per_s": seen / max(t_train, 1e-9)}
        if rank == 0:
            tv = time.perf_counter()
            metrics.update(task.validate(train_loss))
            t_val = time.perf_counter() - tv
            improved = metrics["score"] > best
            if improved:
                best = float(metrics["score"])
            metrics["best_score"] = best
            write_metrics({"type": "epoch", **metrics, "train_s": t_train, "validate_s": t_val})
            save("last", epoch + 1)
            if improved:
                save("best", epoch + 1)
            say(task.describe(metrics))
            if epoch == start_epoch and tc.epochs - epoch > 1 and t_val > 0.05 * t_train:
                left = (tc.epochs - epoch - 1) * (time.perf_counter() - t0)
                say(f"{task.name}: epoch {epoch + 1} took {_duration(time.perf_counter() - t0)} (validation "
                    f"{_duration(t_val)}): about {_duration(left)} left")
        if world > 1:
            dist.barrier()
        result.history.append(metrics)
    result.epochs = max(start_epoch, tc.epochs)
    result.step, result.metrics, result.best_score = step, metrics, best
    return result


# ----------------------------------------------------------------------------------------- tasks
class Task:
    """What fit() needs from a trainer. Subclasses set the attributes and implement the methods."""

    name: str  # checkpoints/<name>/, runs/<name>/, checkpoint kind
    section: str  # vocal.yaml section of its settings
    model: nn.Module
    model_config: dict[str, Any]
    train_cfg: TrainConfig
    n_train: int
    rank: int = 0
    world: int = 1
    min_train_songs: int = 1

    def __init__(self, project: project_mod.Project, cfg: Config, device: torch.device, rank: int = 0,
                 world: int = 1) -> None:
        """What every task shares: its settings, the device, the train/val songs and their mel bank."""
        self.cfg, self.device, self.rank, self.world = cfg, device, rank, world
        self.train_cfg = getattr(cfg, self.section).train
        self.songs = data.split_songs(project, "train")
        if len(self.songs) < self.min_train_songs:
            raise MissingArtifact(
                f"balanced.csv has {len(self.songs)} training songs with mels; {self.name} training needs at "
                f"least {self.min_train_songs}: run 'vocal balance' (on a larger library if it already ran)")
        self.val_songs = data.split_songs(project, "val")
        self.bank = data.MelBank(self.songs, self.loud_fraction(cfg))
        self.n_train = len(self.songs)

    def loud_fraction(self, cfg: Config) -> float:
        """The loudest fraction of each song's frames the model reads (vocalcli.loudness); 1 = every frame."""
        return 1.0

    def batches(self, order: np.ndarray, epoch: int) -> data.CropBatches:
        raise NotImplementedError

    def step(self, model: nn.Module, batch: dict[str, torch.Tensor], gen: torch.Generator
             ) -> tuple[torch.Tensor, dict[str, float]]:
        raise NotImplementedError

    def after_step(self) -> None:
        return None

    def validate(self, train_loss: float) -> dict[str, Any]:
        raise NotImplementedError

    def extra_state(self) -> dict[str, Any]:
        return {}

    def load_extra(self, state: dict[str, Any]) -> None:
        return None

    def describe(self, m: dict[str, Any]) -> str:
        return f"{self.name} epoch {m['epoch']}: train loss {m['train_loss']:.4f}"


def positive_groups(songs: list[data.Song], bank: data.MelBank, positives: str,
                    timbre: TimbreConfig) -> np.ndarray | None:
    """[N] group per training song whose members are each other's positives (None = the song itself):
    its singer (labels), or its cepstral-signature neighbourhood (vocalcli.cepstral.neighbour_groups)."""
    if positives == "singer":
        singers = sorted({s.singer for s in songs})
        return np.array([singers.index(s.singer) for s in songs])
    if positives == "signature":
        return cepstral.neighbour_groups(song_signatures(bank, timbre))
    return None


def song_signatures(bank: data.MelBank, timbre: TimbreConfig) -> np.ndarray:
    """[N, D] the cepstral signature of every song in ``bank``, from its whole mel as `vocal embed` reads it."""
    return np.stack([cepstral.song_signature(np.asarray(bank.mel(i), dtype=np.float32), timbre)
                     for i in range(len(bank))])


class ContrastiveTask(Task):
    """Yakura et al.'s self-supervised contrastive learning on mel crops with a MoCo queue.

    Positive of a crop = another random crop of the same song (pitch-shifted / time-stretched when that
    transformation is ``pos``), or with ``positives: singer`` a crop of another song of the same singer
    (then no song of that singer is a negative). For each ``neg`` transformation, the batch's anchor
    crops transformed are added as negatives of every anchor (its own transformed crop included).

    Teacher (``teacher_weight``, with song positives): part of each crop's target goes to the other songs'
    keys by how alike their cepstral signatures are. Two crops of one song share the song's band as much
    as its voice, so same-song positives alone can teach the band; the signature, which the band barely
    moves, says which *other* songs share the voice, without labels.

    Residues (``contrastive.residue_*``, where prepare stored them): anchor and positive each get what
    MR removal took out of *another* song (its residue mel, power-added at a random level or not at
    all), so the band a vocal estimate still carries stops being what makes two crops alike; the
    negative views inherit the anchor's residue.
    """

    name = section = "contrastive"
    min_train_songs = 2  # a positive pair needs another song to be negative against

    def __init__(self, project: project_mod.Project, cfg: Config, device: torch.device, rank: int = 0,
                 world: int = 1) -> None:
        super().__init__(project, cfg, device, rank, world)
        c = self.c = cfg.contrastive
        self.crop = max(16, round(c.crop_s * cfg.audio.frame_rate))
        self.src = transforms.source_frames(self.crop, c.stretch_factors, c.time_stretch != "none")
        mc = EncoderConfig.from_config(c, cfg.audio)
        self.model_config = mc.to_dict()
        self.model = TimbreEncoder(mc).to(device)
        self.key_model = copy.deepcopy(self.model).requires_grad_(False)
        self.queue = torch.zeros(c.queue_size, mc.embedding_dim, device=device)
        self.queue_ids = torch.full((c.queue_size,), -1, dtype=torch.long, device=device)
        self.queue_len, self.queue_ptr = 0, 0
        self._pending: tuple[torch.Tensor, torch.Tensor] | None = None
        self.groups = positive_groups(self.songs, self.bank, c.positives, cfg.timbre)
        self.signatures = None  # [N, D] the training songs' signatures, the teacher's (teacher_weight)
        if c.teacher_weight > 0 and c.positives == "song":  # other positives group songs themselves
            self.signatures = torch.from_numpy(song_signatures(self.bank, cfg.timbre)).float().to(device)
        self.residues, self.notes = None, []
        donors = [i for i, s in enumerate(self.songs) if s.residue is not None]
        if c.residue_none < 1 and len(donors) >= 2:
            bank = data.MelBank([dataclasses.replace(self.songs[i], path=self.songs[i].residue) for i in donors])
            self.residues = data.ResiduePlan(bank, np.array(donors), c.residue_none,
                                             (float(c.residue_db[0]), float(c.residue_db[1])), c.residue_negatives)
        elif c.residue_none < 1 and cfg.prepare.residue:
            self.notes.append("no residues stored for the training songs (prepared with --separate none, or "
                              "before prepare kept them: run 'vocal prepare SONGS_DIR' again): training without "
                              "borrowed residues")

    def loud_fraction(self, cfg: Config) -> float:
        return cfg.contrastive.loud_fraction  # in training as when embedding

    def batches(self, order: np.ndarray, epoch: int) -> data.CropBatches:
        return data.CropBatches(self.bank, order, self.src, 2, self.cfg.seed, epoch, self.rank,
                                groups=self.groups, residues=self.residues, residue_length=self.crop)

    def views(self, batch: dict[str, torch.Tensor], gen: torch.Generator
              ) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """(anchor [B, M, L], positive [B, M, L], negative views [B, M, L] per `neg` transformation)."""
        c, audio, L = self.c, self.cfg.audio, self.crop
        v = batch["views"].to(self.device, non_blocking=True)
        a_src, p_src = v[0], v[1]
        b = a_src.shape[0]
        anchor = a_src[..., :L]
        pos = (transforms.time_stretch(p_src, transforms.random_rates(b, c.stretch_factors, gen), L)
               if c.time_stretch == "pos" else p_src[..., :L])
        if c.pitch_shift == "pos":
            pos = transforms.pitch_shift(pos, transforms.random_semitones(b, c.semitones, 0.0, gen), audio)
        room = lambda x, r: x  # noqa: E731
        if c.reverb_none < 1:  # anchor and positive each in its own random room (or none)
            rooms = [self._rooms(b, gen), self._rooms(b, gen)]
            room = lambda x, r: transforms.add_reverb(x, *rooms[r], audio.frame_rate)  # noqa: E731
            anchor, pos = room(anchor, 0), room(pos, 1)
        add = lambda x, v: x  # noqa: E731
        if "residues" in batch:
            res = batch["residues"].to(self.device, non_blocking=True)
            db = batch["residue_db"].to(self.device)
            add = lambda x, v: transforms.add_residue(x, res[v], db[v])  # noqa: E731
            anchor, pos = add(anchor, 0), add(pos, 1)
        negs = []
        if c.pitch_shift == "neg":
            negs.append(transforms.pitch_shift(
                anchor, transforms.random_semitones(b, c.semitones, c.min_semitones, gen), audio))
        if c.time_stretch == "neg":
            stretched = transforms.time_stretch(a_src, transforms.random_rates(b, c.stretch_factors, gen), L)
            negs.append(add(room(stretched, 0), 0))  # the anchor's room and band: only the tempo differs
        return anchor, pos, negs

    def _rooms(self, b: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(RT60 s [b], tail level dB [b], -inf = dry) of random rooms (contrastive.reverb_*)."""
        c = self.c
        rt60 = c.reverb_s[0] + (c.reverb_s[1] - c.reverb_s[0]) * torch.rand(b, generator=gen)
        wet = c.reverb_db[0] + (c.reverb_db[1] - c.reverb_db[0]) * torch.rand(b, generator=gen)
        return rt60, torch.where(torch.rand(b, generator=gen) < c.reverb_none, -math.inf, wet)

    def step(self, model, batch, gen):
        anchor, pos, negs = self.views(batch, gen)
        b = anchor.shape[0]
        idx = batch["idx"]
        if self.groups is not None:  # singer positives: no song of the crop's singer is a negative
            idx = torch.from_numpy(self.groups[idx.numpy()])
        ids = idx.to(self.device, non_blocking=True)
        emb = model(torch.cat([anchor, *negs]) if negs else anchor)
        q, nv = emb[:b], emb[b:]
        with torch.no_grad():
            k = self.key_model(pos)
        queue = self.queue[: self.queue_len]
        loss, n = losses.info_nce(q, k, self.c.temperature, nv, queue, ids, self.queue_ids[: self.queue_len],
                                  self.signatures, self.c.teacher_weight, self.c.teacher_temperature)
        self._pending = (k.detach().float(), ids)
        return loss, {"n_candidates": n, "ln_n": losses.chance_level(n)}

    @torch.no_grad()
    def after_step(self) -> None:
        m = self.c.momentum
        for pk, pq in zip(self.key_model.parameters(), self.model.parameters(), strict=True):
            pk.mul_(m).add_(pq.detach(), alpha=1 - m)
        if self._pending is None or self.c.queue_size == 0:
            return
        k, ids = self._pending
        if self.world > 1:
            ks, idss = [torch.empty_like(k) for _ in range(self.world)], [torch.empty_like(ids)
                                                                          for _ in range(self.world)]
            dist.all_gather(ks, k.contiguous())
            dist.all_gather(idss, ids.contiguous())
            k, ids = torch.cat(ks), torch.cat(idss)
        size = self.c.queue_size
        k, ids = k[-size:], ids[-size:]
        pos = (self.queue_ptr + torch.arange(k.shape[0], device=k.device)) % size
        self.queue[pos], self.queue_ids[pos] = k, ids
        self.queue_ptr = int((self.queue_ptr + k.shape[0]) % size)
        self.queue_len = min(size, self.queue_len + k.shape[0])
        self._pending = None

    def extra_state(self) -> dict[str, Any]:
        return {"key_model": self.key_model.state_dict(), "queue": self.queue, "queue_ids": self.queue_ids,
                "queue_len": self.queue_len, "queue_ptr": self.queue_ptr}

    def load_extra(self, state: dict[str, Any]) -> None:
        self.key_model.load_state_dict(state["key_model"])
        self.queue.copy_(state["queue"])
        self.queue_ids.copy_(state["queue_ids"])
        self.queue_len, self.queue_ptr = int(state["queue_len"]), int(state["queue_ptr"])

    @torch.no_grad()
    def validate(self, train_loss: float) -> dict[str, Any]:
        """kNN (k=1, cosine) singer-ID accuracy of val songs against train songs; labels only here."""
        from vocalcli.embed import timbre_embeddings

        val = [s for s in self.val_songs if s.singer in {t.singer for t in self.songs}]
        if not val:
            return {"score": -train_loss}
        # a large library validates on songs spread evenly over its singers (embedding all 3,150 training
        # songs of the seed every epoch would cost a CPU as much as the training itself)
        val = [val[i] for i in data.spread(val, self.c.eval_songs)]
        keep = data.spread(self.songs, self.c.eval_songs)
        refs = [self.songs[i] for i in keep]
        self.model.eval()
        rb = self.bank if len(keep) == len(self.songs) else data.MelBank(refs, self.c.loud_fraction)
        ref = timbre_embeddings(self.model, rb, self.crop, n_crops=self.c.eval_crops, device=self.device)
        vb = data.MelBank(val, self.c.loud_fraction)
        qry = timbre_embeddings(self.model, vb, self.crop, n_crops=self.c.eval_crops, device=self.device)
        self.model.train()
        nn_idx = (qry @ ref.T).argmax(axis=1)
        acc = float(np.mean([refs[j].singer == s.singer for j, s in zip(nn_idx, val, strict=True)]))
        return {"val_singer_acc": acc, "val_songs": len(val), "score": acc}

    def describe(self, m: dict[str, Any]) -> str:
        ln_n = m.get("train_ln_n", float("nan"))
        s = (f"contrastive epoch {m['epoch']}: loss {m['train_loss']:.3f} (chance ln N = {ln_n:.2f}, "
             f"N = {m.get('train_n_candidates', 0):.0f}), {m['samples_per_s']:.1f} samples/s")
        if "val_singer_acc" in m:
            s += f", val singer-ID acc {m['val_singer_acc']:.3f}"
        return s


class TCAETask(Task):
    """Time Causal AutoEncoder: reconstruct normalised log-mel crops through the causal latent."""

    name = section = "tcae"

    def __init__(self, project: project_mod.Project, cfg: Config, device: torch.device, rank: int = 0,
                 world: int = 1) -> None:
        super().__init__(project, cfg, device, rank, world)
        t = self.t = cfg.tcae
        full = int(self.bank.frames.max())
        self.crop = min(full, round(t.crop_s * cfg.audio.frame_rate)) if t.crop_s > 0 else full
        mc = TCAEModelConfig.from_config(t, cfg.audio)
        self.model_config = mc.to_dict()
        self.model = TCAE(mc).to(device)
        self.receptive_field = (mc.receptive_field, receptive_field_seconds(mc, cfg.audio))

    def batches(self, order: np.ndarray, epoch: int) -> data.CropBatches:
        return data.CropBatches(self.bank, order, self.crop, 1, self.cfg.seed, epoch, self.rank)

    def step(self, model, batch, gen):
        raw = batch["views"][0].to(self.device, non_blocking=True)
        x = centre_bands(raw)
        b, shifted = x.shape[0], self.t.shift_semitones > 0 and self.t.shift_weight > 0
        if shifted:  # the same crops transposed, encoded and reconstructed in the same forward pass
            s = transforms.random_semitones(b, self.t.shift_semitones, 0.0, gen)
            x = torch.cat([x, centre_bands(transforms.pitch_shift(raw, s, self.cfg.audio))])
        recon, z = model(x)
        rec = losses.reconstruction(recon.float(), x, self.t.loss)
        if self.t.ssm_weight <= 0:
            return rec, {}
        target = pool_frames(x[:b], self.model.cfg.downsample)
        ssm = losses.self_similarity_match(z[:b], target)
        loss, info = rec + self.t.ssm_weight * ssm, {"recon": rec.detach(), "ssm": ssm.detach()}
        if shifted:
            # the transposed view's latent must keep the *original's* self-similarity: which moments
            # resemble which may not depend on absolute pitch (key, octave, voice)
            shift = losses.self_similarity_match(z[b:], target)
            loss = loss + self.t.shift_weight * shift
            info["shift"] = shift.detach()
        return loss, info

    @torch.no_grad()
    def validate(self, train_loss: float) -> dict[str, Any]:
        if not self.val_songs:
            return {"score": -train_loss}
        self.model.eval()
        vb = data.MelBank(self.val_songs)
        idx = np.arange(len(vb))
        starts = np.maximum(vb.frames - self.crop, 0) // 2  # centred crop: deterministic
        total = 0.0
        for i in range(0, len(idx), 8):
            x = centre_bands(torch.from_numpy(vb.crops(idx[i:i + 8], starts[i:i + 8], self.crop)).to(self.device))
            recon, z = self.model(x)
            loss = losses.reconstruction(recon, x, self.t.loss)
            if self.t.ssm_weight > 0:
                loss = loss + self.t.ssm_weight * losses.self_similarity_match(
                    z, pool_frames(x, self.model.cfg.downsample))
            total += float(loss) * len(x)
        self.model.train()
        val = total / len(idx)
        return {"val_loss": val, "score": -val}

    def describe(self, m: dict[str, Any]) -> str:
        s = f"tcae epoch {m['epoch']}: loss {m['train_loss']:.4f}, {m['samples_per_s']:.1f} samples/s"
        return s + (f", val loss {m['val_loss']:.4f}" if "val_loss" in m else "")


# -------------------------------------------------------------------------------------- public API
def _device(device: str | torch.device) -> torch.device:
    return device if isinstance(device, torch.device) else resolve_device(device)


def train(task_name: str, project: project_mod.Project, cfg: Config, device: str | torch.device = "auto",
          resume: bool | None = None, progress: Callable[..., None] | None = None, log: Log | None = None
          ) -> FitResult:
    """Train one of vocalcli.tasks.TASKS on the project's balanced train split; writes checkpoints."""
    from vocalcli.tasks import get

    cls = get(task_name).trainer_class()
    dev = _device(device)
    rank, world = dist_info()
    seed_everything(cfg.seed)
    task = cls(project, cfg, dev, rank, world)
    for note in getattr(task, "notes", []) if log else []:
        log(note)
    if isinstance(task, TCAETask) and log:
        rf, sec = task.receptive_field
        log(f"TCAE receptive field: {rf} frames = {sec:.2f} s")
    return fit(task, cfg, dev, checkpoints=project.checkpoints / task_name, run_root=project.runs / task_name,
               resume=resume, progress=progress, log=log)


def train_contrastive(project, cfg, device="auto", resume=None, progress=None, log=None) -> FitResult:
    return train("contrastive", project, cfg, device, resume, progress, log)


def train_tcae(project, cfg, device="auto", resume=None, progress=None, log=None) -> FitResult:
    return train("tcae", project, cfg, device, resume, progress, log)


GRID = [("pos", "pos"), ("pos", "neg"), ("neg", "pos"), ("neg", "neg")]
GRID_NONE = [("none", "none"), ("none", "pos"), ("none", "neg"), ("pos", "none"), ("neg", "none")]


def contrastive_grid(project: project_mod.Project, cfg: Config, device: str | torch.device = "auto",
                     include_none: bool = False, progress: Callable[..., None] | None = None,
                     log: Log | None = None) -> list[dict[str, Any]]:
    """Yakura's seed experiment: one run per pitch-shift x time-stretch role, same seed and data.

    Runs write only runs/contrastive-grid/<timestamp>/<ps>-<ts>/ (never the serving checkpoints).
    Rows: final train loss, its chance level ln N and loss / ln N (comparable across different numbers
    of negatives), and val kNN singer-ID accuracy.
    """
    dev = _device(device)
    rank, world = dist_info()
    root = project.runs / "contrastive-grid" / datetime.now().strftime("%Y%m%d-%H%M%S")
    rows = []
    for ps, ts in GRID + (GRID_NONE if include_none else []):
        c = dataclasses.replace(cfg.contrastive, pitch_shift=ps, time_stretch=ts)
        run_cfg = dataclasses.replace(cfg, contrastive=c)
        seed_everything(cfg.seed)
        task = ContrastiveTask(project, run_cfg, dev, rank, world)
        r = fit(task, run_cfg, dev, checkpoints=None, run_root=root / f"{ps}-{ts}", resume=False,
                progress=progress, log=log)
        ln_n = float(r.metrics.get("train_ln_n", float("nan")))
        loss = float(r.metrics.get("train_loss", float("nan")))
        rows.append({"pitch_shift": ps, "time_stretch": ts, "final_loss": loss, "ln_n": ln_n,
                     "loss_over_ln_n": loss / ln_n if ln_n > 0 else float("nan"),
                     "n_candidates": float(r.metrics.get("train_n_candidates", float("nan"))),
                     "val_singer_acc": r.metrics.get("val_singer_acc")})
    return rows
