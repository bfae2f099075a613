"""Commands that train models and write embeddings: train-contrastive, train-tcae, embed (registered in
vocalcli.cli; each is a plain function, importable and testable alone).

Thin: parse, open the project, apply CLI overrides to the config for this run, call one library
function, render. Heavy modules (torch) are imported inside the commands so `vocal --help` stays fast.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from vocalcli.cli import options
from vocalcli.cli.options import (
    Device,
    DeviceOpt,
    GpuOpt,
    JsonOpt,
    ProjectOpt,
    QuietOpt,
    WaitOpt,
    WorkersOpt,
    choice_enum,
    writing,
)
from vocalcli.config import ROLES
from vocalcli.console import emit_json, out, progress_bar, say

Role = choice_enum("Role", ROLES)


EpochsOpt = Annotated[int | None, typer.Option("--epochs", help="Passes over the training songs "
                                               "(default: vocal.yaml).", min=0, show_default=False)]
BatchOpt = Annotated[int | None, typer.Option(
    "--batch-size", "-b", help="Crops per step on any device, lr as given (default: vocal.yaml's batch_size on "
    "CPU, gpu_batch_size on CUDA: auto = 4x with the lr scaled).", min=2, show_default=False)]
LrOpt = Annotated[float | None, typer.Option("--lr", help="Peak learning rate (default: vocal.yaml).",
                                             show_default=False)]
ResumeOpt = Annotated[bool | None, typer.Option(
    "--resume/--no-resume", help="Continue from `checkpoints/TASK/last.pt` (default: when it matches "
    "vocal.yaml) or start over.", show_default=False)]
EmbedOpt = Annotated[bool, typer.Option("--embed/--no-embed", help="Write embeddings at the end when both "
                                        "models are trained.")]

_PROGRESS_EXTRA = "loss {task.fields[loss]:.3f}  {task.fields[rate]:.1f} samples/s"


def _config(project: Any, section: str, epochs: int | None, batch_size: int | None, lr: float | None,
            workers: int | None, more: dict[str, Any] | None = None) -> Any:
    from vocalcli import config as config_mod

    cfg = project.load_config()
    over = {f"{section}.train.epochs": epochs, f"{section}.train.batch_size": batch_size,
            f"{section}.train.gpu_batch_size": batch_size, f"{section}.train.lr": lr,
            f"{section}.train.workers": workers, **(more or {})}
    return config_mod.override(cfg, over)


def _after_training(project: Any, cfg: Any, device: Any, embed: bool, as_json: bool) -> dict[str, Any] | None:
    """Embed when both best checkpoints exist (rank 0 only), else say what is missing."""
    from vocalcli import training
    from vocalcli.tasks import TASKS

    if not training.is_rank0():
        return None
    missing = [t for t in TASKS.values() if not project.checkpoint(t.name, "best").exists()]
    if missing:
        say(f"embeddings need every model: run '{missing[0].train_command}', then 'vocal embed'")
        return None
    if not embed:
        say("run 'vocal embed' to write embeddings")
        return None
    return _run_embed(project, cfg, device)


def _run_embed(project: Any, cfg: Any, device: Any) -> dict[str, Any]:
    from vocalcli.embed import embed_project

    with progress_bar("embed", total=None) as update:
        summary = embed_project(project, cfg, device=device, progress=update)
    say(f"embedded {summary['n']} songs -> {summary['dir']} (timbre {summary['timbre_dim']}-d, "
        f"melody {summary['melody_dim']}-d)")
    for f in summary["failed"]:
        say(f"[yellow]skipped[/] {f['song_id']}: {f['reason']}")
    return summary


def _result(fit: Any) -> dict[str, Any]:
    return {"task": fit.task, "epochs": fit.epochs, "step": fit.step, "best_score": fit.best_score,
            "metrics": fit.metrics, "run_dir": str(fit.run_dir) if fit.run_dir else None,
            "resumed_from": fit.resumed_from}


def _finish(payload: dict[str, Any], as_json: bool) -> None:
    if as_json:
        emit_json(payload)
    failed = (payload.get("embeddings") or {}).get("failed")
    if failed:
        raise typer.Exit(1)


def _train(task: str, project_dir: Any, cfg_over: dict[str, Any], epochs, batch_size, lr, device, gpu, resume,
           workers, embed, as_json) -> None:
    from vocalcli import training
    from vocalcli.device import resolve_device

    project = options.open_project(project_dir)
    cfg = _config(project, task, epochs, batch_size, lr, workers, cfg_over)
    dev = resolve_device(device.value, gpu)
    say(f"training {task} on {dev}")
    try:
        with writing(project.root, f"vocal train-{task}"):
            with progress_bar(f"train {task}", total=None, extra=_PROGRESS_EXTRA, loss=float("nan"),
                              rate=0.0) as update:
                fit = training.train(task, project, cfg, dev, resume=resume, progress=update, log=say)
            payload = _result(fit)
            payload["embeddings"] = _after_training(project, cfg, dev, embed, as_json)
    finally:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
    if training.is_rank0():
        _finish(payload, as_json)



def train_contrastive(
    project: ProjectOpt = None,
    epochs: EpochsOpt = None,
    batch_size: BatchOpt = None,
    lr: LrOpt = None,
    pitch_shift: Annotated[Role | None, typer.Option(
        "--pitch-shift", help="Pitch shift as positive view, negative, or none (default: vocal.yaml).",
        show_default=False)] = None,
    time_stretch: Annotated[Role | None, typer.Option(
        "--time-stretch", help="Time stretch as positive view, negative, or none (default: vocal.yaml).",
        show_default=False)] = None,
    grid: Annotated[bool, typer.Option(
        "--grid", help="Run the pos/neg x pos/neg seed experiment and print one comparable table "
        "(writes runs/ only, not the checkpoints).")] = False,
    grid_none: Annotated[bool, typer.Option("--grid-none", help="With --grid: add the 'none' rows.")] = False,
    device: DeviceOpt = Device.AUTO,
    gpu: GpuOpt = False,
    resume: ResumeOpt = None,
    workers: WorkersOpt = None,
    embed: EmbedOpt = True,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
    wait: WaitOpt = False,
) -> None:
    """Train the timbre / vocal-style encoder (self-supervised contrastive, Yakura et al. 2022)."""
    over = {"contrastive.pitch_shift": pitch_shift.value if pitch_shift else None,
            "contrastive.time_stretch": time_stretch.value if time_stretch else None}
    if not grid:
        _train("contrastive", project, over, epochs, batch_size, lr, device, gpu, resume, workers, embed,
               as_json)
        return
    from vocalcli import training
    from vocalcli.device import resolve_device

    proj = options.open_project(project)
    cfg = _config(proj, "contrastive", epochs, batch_size, lr, workers)
    dev = resolve_device(device.value, gpu)
    with progress_bar("grid", total=None, extra=_PROGRESS_EXTRA, loss=float("nan"), rate=0.0) as update:
        rows = training.contrastive_grid(proj, cfg, dev, include_none=grid_none, progress=update, log=say)
    if as_json:
        emit_json(rows)
        return
    from rich.table import Table

    t = Table(title="contrastive seed grid (same seed, data and epochs; chance level = ln N)")
    for col in ("pitch shift", "time stretch", "final loss", "ln N", "loss / ln N", "val singer-ID acc"):
        t.add_column(col, justify="right" if col[0] in "flv" else "left")
    for r in rows:
        acc = r["val_singer_acc"]
        t.add_row(r["pitch_shift"], r["time_stretch"], f"{r['final_loss']:.3f}", f"{r['ln_n']:.2f}",
                  f"{r['loss_over_ln_n']:.3f}", "-" if acc is None else f"{acc:.3f}")
    out.print(t)

def train_tcae(
    project: ProjectOpt = None,
    epochs: EpochsOpt = None,
    batch_size: BatchOpt = None,
    lr: LrOpt = None,
    device: DeviceOpt = Device.AUTO,
    gpu: GpuOpt = False,
    resume: ResumeOpt = None,
    workers: WorkersOpt = None,
    embed: EmbedOpt = True,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
    wait: WaitOpt = False,
) -> None:
    """Train the melody model (Time Causal AutoEncoder); prints its receptive field."""
    _train("tcae", project, {}, epochs, batch_size, lr, device, gpu, resume, workers, embed, as_json)

def embed(
    project: ProjectOpt = None,
    device: DeviceOpt = Device.AUTO,
    gpu: GpuOpt = False,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
    wait: WaitOpt = False,
) -> None:
    """Write timbre and melody embeddings of every 'ok' song (embeddings/)."""
    from vocalcli.device import resolve_device

    proj = options.open_project(project)
    dev = resolve_device(device.value, gpu)
    with writing(proj.root, "vocal embed"):
        summary = _run_embed(proj, proj.load_config(), dev)
    _finish({"embeddings": summary, **summary}, as_json)
