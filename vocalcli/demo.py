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

from vocalcli import catalog
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
    "contrastive": {"train": {"epochs": 10, "batch_size": 16, "warmup_steps": 10, "steps_per_epoch": 16},
                    "queue_size": 512},
    "tcae": {"train": {"epochs": 6, "batch_size": 8, "warmup_steps": 10, "steps_per_epoch": 10},
             "crop_s": 8.0},
}
"""Few steps: the demo shows the pipeline, it is not a quality run (160 contrastive steps take ~75 s on
2 cores and bring singer-ID on the demo's test songs level with MFCC; 96 steps stayed below it)."""


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

        from vocalcli.audio import warm_librosa_cache

        warm_librosa_cache()
        with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
            list(pool.map(_synth_one, plan.jobs))
    else:
        for job in plan.jobs:
            _synth_one(job)
    plan.write_labels()
    return {"singers": size.singers, "songs": len(plan.jobs), "dir": str(songs_dir)}


def write_query_song(path: Path, size: DemoSize, seed: int = 0) -> tuple[Path, str]:
    """A new recording outside the library, for the recommend step: the first singer sings the library's
    second melody again, with another seed. Why not a library file: recommend recognises a catalog
    song's own file and answers from the index, and the demo is meant to show a new file going
    through the whole pipeline (decode, MR removal, mel, both models)."""
    from vocalcli import synth

    # the library's own job for that song (its length, rate and mix), with a seed no library song has
    singer, melody, seconds, sr, _, _, vocal_to_accomp_db, _ = synth.plan_library(
        path.parent, size.singers, size.songs, size.seconds, size.short_seconds, seed=seed).jobs[1]
    if not path.exists():
        synth.write_song(singer, melody, seconds, sr, seed * 10_000 + 9_999, path, vocal_to_accomp_db)
    return path, f"a new song by {singer.name}, melody m{melody:02d}"


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
             progress_factory: Callable[..., Any] | None = None, device: str = "auto") -> dict[str, Any]:
    """Synthesize -> prepare -> balance -> train both models -> embed -> gender -> index -> recommend
    -> evaluate -> plot -> report. Returns every step's summary (what the CLI prints and --json dumps)."""
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

    b = bal.balance(catalog.read(proj), cfg.balance, cfg.seed)
    project_mod.write_csv(proj.balanced, b.rows, project_mod.BALANCED_FIELDS)
    report["balance"] = {"kept": len(b.kept_singers), "dropped": [d.singer for d in b.dropped],
                         "replaced": b.replaced, "splits": b.split_counts()}
    note("balance", report["balance"])

    from vocalcli import training
    from vocalcli.tasks import TASKS

    train_extra = "loss {task.fields[loss]:.3f}"
    for task in TASKS:
        with bar(f"train {task}", None, extra=train_extra, loss=float("nan")) as tick:
            fit = training.train(task, proj, cfg, device, progress=tick)
        report[f"train-{task}"] = {
            "epochs": fit.epochs, "steps": fit.step, "resumed_from": fit.resumed_from,
            **{k: round(float(v), 4) for k, v in fit.metrics.items()
               if k in ("train_loss", "train_ln_n", "val_singer_acc", "val_loss") and v is not None},
            "checkpoint": str(proj.checkpoint(task).relative_to(root))}
        note(f"train-{task}", report[f"train-{task}"])

    from vocalcli import embed

    with bar("embed", None) as tick:
        report["embed"] = _plain(embed.embed_project(proj, cfg, device=device, progress=tick))
    note("embed", report["embed"])

    from vocalcli import gender

    g = gender.train(proj, cfg)
    report["gender"] = {"features": g.get("features"), "heldout_singers": g.get("heldout_singers"),
                        "balanced_accuracy": _get(g, "metrics", "balanced_accuracy")}
    note("gender", report["gender"])

    from vocalcli import index

    info = index.build_index(proj, cfg)
    report["index"] = _plain({"songs": info.n, "dim": info.dim, "n_trees": info.n_trees,
                              "search_k": info.search_k, "recall_at_10": info.recall_at_10})
    note("index", report["index"])

    from vocalcli import recommend

    query, who = write_query_song(root / "query.flac", size, cfg.seed)
    rec = recommend.recommend(proj, cfg, audio=query, k=5, device=device)
    report["recommend"] = {"query": f"{query.relative_to(root)} ({who})",
                           "top": [f"{i.singer}/{i.title} ({i.score:.2f})" for i in rec.items]}
    note("recommend", report["recommend"])

    from vocalcli import evaluate

    with bar("evaluate", None) as tick:
        ev = evaluate.evaluate(proj, cfg, melody_labels=songs_dir / "melody_labels.csv", progress=tick)
    report["evaluate"] = {k: ev.get(k) for k in evaluate.REQUIRED_KEYS}
    report["evaluate"]["below_baseline"] = evaluate.below_baseline(ev)
    report["evaluate"]["caveat"] = DEMO_CAVEAT
    note("evaluate", report["evaluate"])

    from vocalcli import plot

    pr = plot.plot_map(proj, cfg, root / "map.png")
    report["plot"] = {"png": str(Path(pr.path).relative_to(root)), "singers": pr.singers, "method": pr.method}
    note("plot", report["plot"])

    from vocalcli import report as report_mod

    with bar("report", None) as tick:
        site = report_mod.write_report(proj, cfg, root / "report", workers=workers, progress=tick)
    report["report"] = {"page": str(site.path), "songs": site.songs, "clips_written": site.clips_written,
                        "clips_reused": site.clips_reused, "megabytes": round(site.bytes / 1e6, 1),
                        "notes": site.notes}
    note("report", report["report"])
    return report


DEMO_CAVEAT = ("synthetic voices and seconds of training: these numbers show that every step runs, they are "
               "not vocal's quality (chroma, for one, is at its best on clean synthetic tones); real-voice "
               "numbers are in docs/quality.md")


def _get(d: Any, *keys: Any) -> Any:
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def _plain(obj: Any) -> Any:
    """JSON-friendly copy (numpy scalars -> floats, paths -> str)."""
    import json

    return json.loads(json.dumps(obj, default=lambda o: o.item() if hasattr(o, "item") else str(o)))
