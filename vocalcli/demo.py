"""`vocal demo`: synthesize a small labelled library and run the whole pipeline on it.

The demo is the newcomer's first contact and CI's smoke test, so it uses the real defaults wherever
time allows (2:40 songs, the 30 s - 2:30 window, 48 x 7501 mels) and only shrinks training; `quick`
shrinks the songs and the window too (for tests).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vocalcli import project as project_mod

Step = Callable[[str, dict[str, Any]], None]
"""Called after each pipeline step with its name and a summary (the CLI renders it)."""


@dataclass(frozen=True)
class DemoSize:
    singers: int = 6
    songs: int = 8
    seconds: float = 160.0
    short_seconds: float = 100.0
    start_s: float = 30.0
    end_s: float = 150.0
    songs_per_singer: int = 7


QUICK = DemoSize(singers=6, songs=8, seconds=14.0, short_seconds=6.0, start_s=2.0, end_s=12.0)

DEMO_TRAINING = {
    "contrastive": {"train": {"epochs": 8, "batch_size": 16, "warmup_steps": 10, "steps_per_epoch": 12},
                    "queue_size": 256, "channels": 32, "embedding_dim": 64},
    "tcae": {"channels": 32, "layers_per_stack": 5, "stacks": 1, "crop_s": 8.0,
             "train": {"epochs": 6, "batch_size": 8, "warmup_steps": 10, "steps_per_epoch": 10}},
}
"""Small models and few steps: the demo shows the pipeline, it is not a quality run."""


def _synth_one(args: tuple) -> None:
    from vocalcli import synth

    return synth.write_song(*args)


def write_library(songs_dir: Path, size: DemoSize, workers: int, seed: int = 0) -> dict[str, Any]:
    """Synthesize the library in parallel (one process per song)."""
    from vocalcli import synth

    plan = synth.plan_library(songs_dir, size.singers, size.songs, size.seconds, size.short_seconds,
                              seed=seed)
    if workers > 1:
        import multiprocessing as mp

        with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
            list(pool.map(_synth_one, plan.jobs))
    else:
        for job in plan.jobs:
            _synth_one(job)
    plan.write_labels()
    return {"singers": size.singers, "songs": len(plan.jobs), "dir": str(songs_dir)}


def demo_config_text(size: DemoSize) -> str:
    """vocal.yaml for the demo: every default, with the demo's window and tiny training settings."""
    from vocalcli import config as config_mod

    data = config_mod.Config().to_dict()
    data["audio"].update(start_s=size.start_s, end_s=size.end_s)
    data["balance"]["songs_per_singer"] = size.songs_per_singer
    for sec, values in DEMO_TRAINING.items():
        for k, v in values.items():
            if isinstance(v, dict):
                data[sec][k].update(v)
            else:
                data[sec][k] = v
    return config_mod.to_yaml(config_mod.from_dict(data))


@contextmanager
def _no_progress(description: str, total: int | None, **fields: Any) -> Iterator[Callable[..., None]]:
    yield lambda advance=1, **values: None


def run_demo(root: Path, quick: bool = False, workers: int = 2, step: Step | None = None,
             progress_factory: Callable[..., Any] | None = None) -> dict[str, Any]:
    """Synthesize -> prepare -> balance (-> later stages as they exist). Returns every step's summary."""
    from vocalcli import balance as bal
    from vocalcli import prepare as prep

    size = QUICK if quick else DemoSize()
    root = Path(root).resolve()
    songs_dir = root / "songs"
    report: dict[str, Any] = {"project": str(root)}
    note = step or (lambda name, summary: None)
    bar = progress_factory or _no_progress

    proj = project_mod.Project(root)
    root.mkdir(parents=True, exist_ok=True)
    if not proj.config_path.exists():
        project_mod.write_text(proj.config_path, demo_config_text(size))
    cfg = proj.load_config()

    if not (songs_dir / "singers.csv").exists():
        report["synthesize"] = write_library(songs_dir, size, workers, seed=cfg.seed)
    else:
        report["synthesize"] = {"dir": str(songs_dir), "reused": True}
    note("synthesize", report["synthesize"])

    with bar("prepare", None) as tick:
        res = prep.prepare_files(proj, songs_dir, cfg, workers=workers, progress=tick,
                                 on_total=lambda n: tick(advance=0, total=n))
    report["prepare"] = {"counts": res.counts, "processed": res.processed, "skipped": res.skipped,
                         "separation": res.separation, "seconds": round(res.seconds, 1)}
    note("prepare", report["prepare"])

    b = bal.balance(project_mod.read_csv(proj.catalog), cfg.balance, cfg.seed)
    project_mod.write_csv(proj.balanced, b.rows, project_mod.BALANCED_FIELDS)
    report["balance"] = {"kept": len(b.kept_singers), "dropped": [d.singer for d in b.dropped],
                         "replaced": b.replaced, "splits": b.split_counts()}
    note("balance", report["balance"])
    return report
