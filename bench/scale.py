"""The seed's scale end to end: 150 singers x 30 songs, one table of wall time, throughput, peak RSS and
GPU busy % per step, and the whole-pipeline estimate for 4,500 songs.

    python bench/scale.py                 # seed scale (4,500 full-size mels, 3.2 GB); on the GPU if there is one
    python bench/scale.py --small         # a 2-core box in minutes: 6 x 30 songs, training capped at a few steps
    python bench/scale.py --json out.json

Steps (each in its own process, so peak RSS is the step's own; GPU busy % is nvidia-smi's
utilization.gpu sampled every 0.2 s while the step runs, when nvidia-smi exists):
  build       synthetic full-size log-mels (bench/seedproject.py): speed does not depend on the sound
  prepare     a sample of synthesized 2:40 songs (44.1 kHz FLAC) through `prepare` (built-in harmonic MR
              removal, one process per CPU), and demucs: an untrained full-size HTDemucs (speed does not
              depend on the weights) on 2-minute windows at 44.1 kHz stereo, x realtime
  train-*     one epoch of each trainer with the default vocal.yaml schedule for this library and device
              (--small: a few steps), then the default schedule's length at 4,500 songs from the measured rate
  embed       every song, songs batched, and the one-song-at-a-time path on a sample (the baseline)
  index, recommend (a fresh `vocal recommend --song-id` process), evaluate, plot
The estimate for 4,500 songs scales each step's measured rate to the seed's library: prepare by songs,
training by the default schedule's steps (validation by its songs), embed by songs, the rest by
measurement at this size (they are not the long steps; see docs/performance.md).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

SEED_SONGS, SEED_SINGERS = 4500, 150
WINDOW_S = 120.0  # the analysed window (30 s - 2:30)


# --------------------------------------------------------------------------------------- step bodies
def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_s() -> float:
    """CPU seconds of this process and its finished children (prepare's workers): on a shared, overloaded
    box the wall time says how busy the box was; the CPU time says what the step costs."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _env() -> dict[str, str]:
    """This checkout first on the path of every child process, then whatever was there (e.g. demucs)."""
    rest = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": str(ROOT) + (os.pathsep + rest if rest else "")}


def _device(name: str):  # noqa: ANN202
    from vocalcli.device import resolve_device

    return resolve_device(name)


def step_build(a: argparse.Namespace) -> dict:
    import seedproject

    t = time.perf_counter()
    proj = seedproject.build(a.dir / "project", a.singers, a.songs)
    n = a.singers * a.songs
    return {"wall_s": time.perf_counter() - t, "n": n, "unit": "songs", "note": f"{proj.root}"}


def _sync(dev) -> None:  # noqa: ANN001
    import torch

    if dev.type == "cuda":
        torch.cuda.synchronize()


def step_prepare(a: argparse.Namespace) -> dict:
    """Built-in separator through the real prepare; demucs speed with an untrained model."""
    from vocalcli import config as config_mod
    from vocalcli import project as project_mod
    from vocalcli.prepare import prepare_files
    from vocalcli.synth import make_library

    songs_dir = a.dir / "songs"
    if not (songs_dir / "singers.csv").exists():
        make_library(songs_dir, n_singers=max(2, a.prepare_songs // 2), songs_per_singer=2, seconds=160.0,
                     n_short=0, sr=44100, formats=("flac",))
    proj = project_mod.init(a.dir / "prep")
    cfg = config_mod.override(proj.load_config(), {"prepare.separate": "harmonic"})
    # one process, after a warm-up song: CPU seconds per song without the start-up, which a library
    # pays once per worker (the 4,500-song estimate adds it back)
    first = sorted(p for p in songs_dir.rglob("*.flac"))[:1]
    warm = a.dir / "songs-warm"
    if not warm.exists() and first:
        (warm / first[0].parent.name).mkdir(parents=True)
        (warm / first[0].parent.name / first[0].name).symlink_to(first[0])
    prepare_files(proj, warm, cfg, force=True, workers=1)
    t, c0 = time.perf_counter(), _cpu_s()  # after the synthesis: only prepare is counted
    res = prepare_files(proj, songs_dir, cfg, force=True, workers=1)
    wall = time.perf_counter() - t
    n = res.counts.get("ok", 0)
    out = {"wall_s": wall, "n": n, "unit": "songs", "workers": 1, "cpu_s_own": _cpu_s() - c0, "cpus": os.cpu_count(),
           "note": "harmonic, one process after a warm-up song"}
    out["demucs"] = _demucs_speed(a)
    return out


def _demucs_speed(a: argparse.Namespace) -> dict:
    """x realtime of an untrained full-size HTDemucs on 2-minute windows (CPU --small: a 20 s window)."""
    try:
        from demucs.htdemucs import HTDemucs
    except ImportError as e:
        return {"skipped": f"demucs not importable ({e})"}
    import numpy as np
    import torch

    from vocalcli import separation

    dev = _device(a.device)
    torch.manual_seed(0)
    model = HTDemucs(sources=["drums", "bass", "other", "vocals"]).eval()
    seconds = 20.0 if (a.small and dev.type == "cpu") else WINDOW_S
    n = 1 if dev.type == "cpu" else a.demucs_songs
    rng = np.random.default_rng(0)
    wins = [(0.1 * rng.standard_normal((2, int(seconds * 44100)))).astype(np.float32) for _ in range(n)]
    fn = getattr(separation, "demucs_vocals", None)
    if fn is None:
        return {"skipped": "this vocal has no separation.demucs_vocals"}
    fn(model, [wins[0][:, : 44100 * 8]], 44100, 16000, dev)  # warm-up
    _sync(dev)
    t, c = time.perf_counter(), time.process_time()
    fn(model, wins, 44100, 16000, dev)
    _sync(dev)
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    return {"x_realtime": n * seconds / wall, "windows": n, "window_s": seconds, "wall_s": wall, "cpu_s": cpu,
            "x_realtime_per_cpu_s": n * seconds / cpu, "device": str(dev)}


def _train(a: argparse.Namespace, task: str) -> dict:
    from vocalcli import config as config_mod
    from vocalcli import data, training
    from vocalcli import project as project_mod

    proj = project_mod.Project((a.dir / "project").resolve())
    cfg = proj.load_config()
    dev = _device(a.device)
    over = {f"{task}.train.epochs": 1}
    if a.small:
        over[f"{task}.train.steps_per_epoch"] = a.train_steps
    for kv in a.set or []:  # e.g. tcae.train.compile=true, contrastive.train.gpu_batch_size=256
        key, _, value = kv.partition("=")
        if key.startswith(task + "."):
            over[key] = json.loads(value)
    run_cfg = config_mod.override(cfg, over)
    said: list[str] = []
    ticks: list[float] = []  # CPU seconds at each step's end (on CPU every step is read back at once)

    def progress(advance: int = 1, **fields: object) -> None:
        if advance and "total" not in fields:
            ticks.append(_cpu_s())

    t, c0 = time.perf_counter(), _cpu_s()
    fit = training.train(task, proj, run_cfg, dev, resume=False, log=said.append, progress=progress)
    wall, cpu = time.perf_counter() - t, _cpu_s() - c0
    cpu_step = (ticks[-1] - ticks[0]) / (len(ticks) - 1) if len(ticks) > 1 else float("nan")
    cpu_val = _cpu_s() - c0 - (ticks[-1] - c0 if ticks else 0.0)
    rows = [json.loads(x) for x in (fit.run_dir / "metrics.jsonl").read_text().splitlines()]
    epoch = next(r for r in rows if r["type"] == "epoch")
    steps = [r for r in rows if r["type"] == "step"]
    # steady rate: the steps after the first (which pays for allocation / autotuning)
    train_s = epoch["train_s"]
    first = 1 / max(steps[0]["samples_per_s"], 1e-9) * fit.plan.batch if steps else 0.0
    steady = (len(steps) - 1) / max(train_s - first, 1e-9) if len(steps) > 1 else len(steps) / max(train_s, 1e-9)
    # the default schedule (vocal.yaml untouched) at the seed's library on this device; validation scaled
    # by the songs it embeds (contrastive: train + val, kNN of val against train; tcae: val)
    n_val = len(data.split_songs(proj, "val"))
    defaults = config_mod.Config()
    sp = defaults.balance.split
    tc = getattr(defaults, task).train
    seed_plan = training.plan_for(tc, round(SEED_SONGS * sp.train), dev.type)
    seed_steps_s = seed_plan.total / steady
    if task == "contrastive":  # at most eval_songs references and queries (TrainConfig docs)
        cap = defaults.contrastive.eval_songs or 10**9
        ratio = (min(round(sp.train * SEED_SONGS), cap) + min(round(sp.val * SEED_SONGS), cap)) / \
            (min(fit.plan.n_train, cap) + min(n_val, cap))
    else:
        ratio = sp.val * SEED_SONGS / max(n_val, 1)
    seed_val_s = epoch["validate_s"] * ratio * seed_plan.epochs
    seed_cpu_s = seed_plan.total * cpu_step + cpu_val * ratio * seed_plan.epochs
    return {"wall_s": wall, "n": fit.step * fit.plan.batch, "unit": "crops", "steps": fit.step,
            "batch": fit.plan.batch, "steps_per_s": steady, "samples_per_s_steady": steady * fit.plan.batch,
            "validate_s": epoch["validate_s"], "train_s": train_s, "plan": said[:1],
            "seed_plan": seed_plan.describe(task), "seed_estimate_s": seed_steps_s + seed_val_s,
            "seed_estimate_parts": {"steps_s": seed_steps_s, "validation_s": seed_val_s},
            "cpu_per_step": cpu_step, "validate_cpu_s": cpu_val, "fit_cpu_s": cpu, "seed_cpu_s": seed_cpu_s}


def step_embed(a: argparse.Namespace) -> dict:
    import numpy as np

    from vocalcli import data
    from vocalcli import project as project_mod
    from vocalcli.embed import Embedder, embed_project

    proj = project_mod.Project((a.dir / "project").resolve())
    dev = _device(a.device)
    t, c = time.perf_counter(), _cpu_s()
    summary = embed_project(proj, device=dev)
    wall, cpu = time.perf_counter() - t, _cpu_s() - c
    emb = Embedder.from_project(proj, dev)
    sample = data.catalog_songs(proj)[: a.baseline_songs]
    emb.embed_parts(np.load(sample[0].path))
    t, c = time.perf_counter(), _cpu_s()
    for s in sample:
        emb.embed_parts(np.load(s.path, mmap_mode="r"), None if s.pitch is None else np.load(s.pitch))
    _sync(dev)
    base_wall, base_cpu = time.perf_counter() - t, _cpu_s() - c
    return {"wall_s": wall, "cpu_s_own": cpu, "n": summary["n"], "unit": "songs",
            "baseline_songs_per_s": len(sample) / base_wall, "cpu_s_per_song": cpu / summary["n"],
            "baseline_cpu_s_per_song": base_cpu / len(sample),
            "note": f"one at a time: {len(sample) / base_wall:.2f} songs/s on {len(sample)} songs"}


def step_index(a: argparse.Namespace) -> dict:
    from vocalcli import index
    from vocalcli import project as project_mod

    proj = project_mod.Project((a.dir / "project").resolve())
    t = time.perf_counter()
    info = index.build_index(proj, proj.load_config())
    return {"wall_s": time.perf_counter() - t, "n": info.n, "unit": "songs",
            "note": f"search_k {info.search_k}, recall@10 {info.recall_at_10:.3f}"}


def step_recommend(a: argparse.Namespace) -> dict:
    from vocalcli import project as project_mod

    proj = project_mod.Project((a.dir / "project").resolve())
    sid = project_mod.read_csv(proj.catalog)[0]["song_id"]
    cmd = [sys.executable, "-m", "vocalcli", "-q", "recommend", "--song-id", sid, "-p", str(proj.root), "--json"]
    t = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env=_env())
    wall = time.perf_counter() - t
    if r.returncode:
        raise RuntimeError(r.stderr[-1500:])
    return {"wall_s": wall, "n": 1, "unit": "queries", "note": "fresh process: vocal recommend --song-id"}


def step_evaluate(a: argparse.Namespace) -> dict:
    from vocalcli import evaluate
    from vocalcli import project as project_mod

    proj = project_mod.Project((a.dir / "project").resolve())
    t = time.perf_counter()
    r = evaluate.evaluate(proj, proj.load_config(), melody_labels=proj.root / "melody_labels.csv",
                          out_dir=a.dir / "evaluate")
    return {"wall_s": time.perf_counter() - t, "n": r["n_songs"], "unit": "songs",
            "note": f"loo singer-ID {r.get('singer_id.loo_top1')}, n_loo {r.get('singer_id.n_loo')}"}


def step_plot(a: argparse.Namespace) -> dict:
    from vocalcli import plot
    from vocalcli import project as project_mod

    proj = project_mod.Project((a.dir / "project").resolve())
    t = time.perf_counter()
    pr = plot.plot_map(proj, proj.load_config(), a.dir / "map.png")
    return {"wall_s": time.perf_counter() - t, "n": pr.n_songs, "unit": "songs", "note": pr.method}


def step_fake_embed(a: argparse.Namespace) -> dict:
    """Untrained checkpoints and synthetic embeddings (a singer centroid + noise per song) of every song:
    index / recommend / evaluate / plot at the seed's size without training and embedding 4,500 songs on
    a CPU. Their speed does not depend on what the vectors are."""
    import numpy as np

    from vocalcli import cepstral, data, training
    from vocalcli import config as config_mod
    from vocalcli import project as project_mod
    from vocalcli.embed import IDS_FIELDS, Embedder, melody_settings, normalise_timbre

    proj = project_mod.Project((a.dir / "project").resolve())
    cfg = proj.load_config()
    t = time.perf_counter()
    zero = config_mod.override(cfg, {"contrastive.train.epochs": 0, "tcae.train.epochs": 0})
    for task in ("contrastive", "tcae"):
        if not proj.checkpoint(task).exists():
            training.train(task, proj, zero, "cpu")
    emb = Embedder.from_project(proj, "cpu")
    songs = data.catalog_songs(proj)
    rng = np.random.default_rng(0)
    dims = {"encoder": emb.encoder.cfg.embedding_dim, "cepstral": cepstral.dim(cfg.timbre),
            "melody": len(np.arange(0.5, 64.0 + 0.125, 0.25))}
    singers = sorted({s.singer for s in songs})
    centre = {k: {g: rng.normal(size=d) for g in singers} for k, d in dims.items()}
    arrays = {k: np.stack([centre[k][s.singer] + 0.7 * rng.normal(size=d) for s in songs]).astype(np.float32)
              for k, d in dims.items()}
    arrays = {k: v / np.linalg.norm(v, axis=1, keepdims=True) for k, v in arrays.items()}
    arrays["timbre"] = cepstral.fuse(arrays["encoder"], arrays["cepstral"], cfg.timbre)
    out = proj.embeddings
    whitening = normalise_timbre(arrays, [s.singer for s in songs], cfg.timbre, out)  # as vocal embed does
    for k, v in arrays.items():
        project_mod.save_npy(out / f"{k}.npy", v.astype(np.float32))
    project_mod.write_csv(out / "ids.csv", [{"row": i, "song_id": s.song_id} for i, s in enumerate(songs)],
                          IDS_FIELDS)
    project_mod.write_json(out / "meta.json", {
        "checkpoints": emb.checkpoint_hashes, "timbre": cepstral.settings(cfg.timbre),
        "melody": melody_settings(cfg.melody), "n": len(songs),
        "timbre_dim": int(arrays["timbre"].shape[1]), "melody_dim": int(arrays["melody"].shape[1]),
        "failed": [], "catalog": project_mod.file_digest(proj.catalog), "whitening": whitening})
    return {"wall_s": time.perf_counter() - t, "n": len(songs), "unit": "songs",
            "note": "synthetic embeddings (no model run)"}


STEPS = {"build": step_build, "prepare": step_prepare, "fake-embed": step_fake_embed,
         "train-contrastive": lambda a: _train(a, "contrastive"), "train-tcae": lambda a: _train(a, "tcae"),
         "embed": step_embed, "index": step_index, "recommend": step_recommend, "evaluate": step_evaluate,
         "plot": step_plot}


# ------------------------------------------------------------------------------------------ driver
class GpuBusy:
    """nvidia-smi utilization.gpu samples (every 0.2 s) while a step runs; None without nvidia-smi."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self.proc = None
        if shutil.which("nvidia-smi"):
            self.proc = subprocess.Popen(["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits",
                                          "-lms", "200"], stdout=subprocess.PIPE, text=True)
            self.thread = threading.Thread(target=self._read, daemon=True)
            self.thread.start()

    def _read(self) -> None:
        for line in self.proc.stdout:  # type: ignore[union-attr]
            try:
                self.samples.append(float(line.strip().split(",")[0]))
            except ValueError:
                pass

    def stop(self) -> dict | None:
        if self.proc is None:
            return None
        self.proc.terminate()
        self.proc.wait()
        s = sorted(self.samples)
        if not s:
            return None
        return {"mean": sum(s) / len(s), "p50": s[len(s) // 2], "max": s[-1], "samples": len(s)}


def run_step(name: str, a: argparse.Namespace) -> dict:
    cmd = [sys.executable, __file__, "--step", name, "--dir", str(a.dir), "--device", a.device,
           "--singers", str(a.singers), "--songs", str(a.songs), "--train-steps", str(a.train_steps),
           "--prepare-songs", str(a.prepare_songs), "--baseline-songs", str(a.baseline_songs),
           "--demucs-songs", str(a.demucs_songs), "--threads", str(a.threads)] + (["--small"] if a.small else []) + \
        [x for kv in a.set or [] for x in ("--set", kv)]
    gpu = GpuBusy()
    t = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env=_env())
    wall = time.perf_counter() - t
    busy = gpu.stop()
    if r.returncode:
        return {"step": name, "error": r.stderr.strip().splitlines()[-1] if r.stderr.strip() else f"rc {r.returncode}",
                "process_s": wall}
    row = json.loads(r.stdout.strip().splitlines()[-1])
    row.update(step=name, process_s=wall, gpu_busy=busy)
    return row


def _fmt_s(s: float) -> str:
    if s < 120:
        return f"{s:.1f} s"
    if s < 7200:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.2f} h"


def _parallel(step: str, cores: int) -> float:
    """How many of ``cores`` a step keeps busy: prepare's worker processes all of them; torch's intra-op
    threads (training, embedding) ~80 % of them; the rest is single-threaded Python/numpy."""
    if step == "prepare":
        return float(cores)
    if step.startswith("train") or step == "embed":
        return 0.8 * cores
    return 1.0


def estimate(rows: dict[str, dict], a: argparse.Namespace, cores: int | None = None) -> dict[str, float]:
    """Seconds each step would take for the seed's 4,500 songs on this machine (see the module docstring).

    ``cores``: estimate from CPU seconds instead, as if the machine were idle with that many cores
    (CPU seconds / the cores a step keeps busy, `_parallel`): what a laptop would do, when the box
    measured on was shared and overloaded.
    """
    est: dict[str, float] = {}
    p = rows.get("prepare", {})

    def cost(r: dict) -> float:
        return r["cpu_s"] / _parallel(r["step"], cores) if cores else r["wall_s"]

    if p.get("n"):
        # one process measured; a library runs one worker per core (cores / ``cores`` of them at once)
        per = p["cpu_s"] / p["n"] / cores if cores else p["wall_s"] / p["n"] / p.get("cpus", 1)
        est["prepare (harmonic)"] = per * SEED_SONGS
    d = p.get("demucs", {})
    if d.get("x_realtime"):
        speed = d["x_realtime_per_cpu_s"] * _parallel("train", cores) if cores and d.get("x_realtime_per_cpu_s") \
            else d["x_realtime"]
        est["prepare (demucs)"] = SEED_SONGS * WINDOW_S / speed + \
            (est.get("prepare (harmonic)", 0.0) * 0.3)  # + decode/mel/pitch (~30 % of harmonic's)
    for t in ("train-contrastive", "train-tcae"):
        r = rows.get(t, {})
        if r.get("seed_estimate_s"):
            est[t] = r["seed_cpu_s"] / _parallel(t, cores) if cores else r["seed_estimate_s"]
    e = rows.get("embed", {})
    if e.get("n"):
        est["embed"] = cost(e) / e["n"] * SEED_SONGS
    for t in ("index", "recommend", "evaluate", "plot"):
        if rows.get(t, {}).get("wall_s") is not None:
            n = rows[t].get("n") or 1
            # index/evaluate grow a little faster than linearly; measured at 4,500 when not --small
            est[t] = cost(rows[t]) * (SEED_SONGS / n if t in ("index", "evaluate") and n < SEED_SONGS else 1)
    return est


def report(rows: dict[str, dict], a: argparse.Namespace, dev: str, cpus: int) -> tuple[dict, dict]:
    """Print the table and the 4,500-song estimates of a run (also of a saved one: --report FILE)."""
    est = estimate(rows, a)
    est_idle = estimate(rows, a, cores=a.laptop_cores) if dev == "cpu" else {}
    print("\n| step | wall | CPU time | throughput | peak RSS | GPU busy % | note |\n|---|---|---|---|---|---|---|")
    for name, r in rows.items():
        if "error" in r:
            print(f"| {name} | error | | | | | {r['error']} |")
            continue
        busy = r.get("gpu_busy")
        busy_s = f"{busy['mean']:.0f} (p50 {busy['p50']:.0f})" if busy else "-"
        note = r.get("note", "")
        if name.startswith("train"):
            note = (f"{r['steps']} steps of {r['batch']}, steady {r['steps_per_s']:.2f} steps/s; validation "
                    f"{r['validate_s']:.1f} s")
        if name == "prepare" and r.get("demucs", {}).get("x_realtime"):
            d = r["demucs"]
            note += f"; demucs (untrained HTDemucs, {d['windows']} x {d['window_s']:.0f} s on {d['device']}): " \
                    f"{d['x_realtime']:.2f}x realtime" + (f" ({d['x_realtime_per_cpu_s']:.2f} s of audio per CPU s)"
                                                        if d.get("x_realtime_per_cpu_s") else "")
        if name == "embed":
            note = f"batched {r['n'] / r['wall_s']:.2f} songs/s vs one at a time {r['baseline_songs_per_s']:.2f} " \
                   f"({r['n'] / r['wall_s'] / r['baseline_songs_per_s']:.2f}x)"
            if r.get("cpu_s_per_song"):
                note += f"; CPU s per song {r['cpu_s_per_song']:.2f} vs {r['baseline_cpu_s_per_song']:.2f} " \
                        f"({r['baseline_cpu_s_per_song'] / r['cpu_s_per_song']:.2f}x)"
        print(f"| {name} | {_fmt_s(r['wall_s'])} | {_fmt_s(r['cpu_s'])} | {r['n'] / max(r['wall_s'], 1e-9):.2f} "
              f"{r['unit']}/s | "
              f"{r['peak_rss_mb']:.0f} MB | {busy_s} | {note} |")
    print(f"\nestimate for {SEED_SONGS:,} songs on this machine ({dev}, {cpus} CPUs), default vocal.yaml:")
    for k, v in est.items():
        print(f"  {k:22s} {_fmt_s(v)}")
    built_in = sum(v for k, v in est.items() if k != "prepare (demucs)")
    print(f"  {'total (harmonic)':22s} {_fmt_s(built_in)}")
    if "prepare (demucs)" in est:
        with_demucs = built_in - est.get("prepare (harmonic)", 0) + est["prepare (demucs)"]
        print(f"  {'total (demucs)':22s} {_fmt_s(with_demucs)}")
    if est_idle:
        n = a.laptop_cores
        print(f"\nthe same from CPU seconds, as on an idle {n}-core laptop (CPU seconds / cores each step uses):")
        for k, v in est_idle.items():
            print(f"  {k:22s} {_fmt_s(v)}")
        tot = sum(v for k, v in est_idle.items() if k != "prepare (demucs)")
        print(f"  {'total (harmonic)':22s} {_fmt_s(tot)}")
    for t in ("train-contrastive", "train-tcae"):
        if rows.get(t, {}).get("seed_plan"):
            print(f"  {rows[t]['seed_plan']}")
    return est, est_idle


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--small", action="store_true", help="6 singers x 30 songs, a few training steps (2-core box)")
    ap.add_argument("--dir", type=Path, help="work dir (default: a temp dir, removed unless --keep)")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--singers", type=int)
    ap.add_argument("--songs", type=int, default=30)
    ap.add_argument("--train-steps", type=int, default=6, help="--small: steps timed per trainer")
    ap.add_argument("--prepare-songs", type=int)
    ap.add_argument("--baseline-songs", type=int)
    ap.add_argument("--demucs-songs", type=int, default=8, help="2-minute windows per demucs batch (GPU)")
    ap.add_argument("--steps", default=",".join(k for k in STEPS if k != "fake-embed"),
                    help="comma-separated; fake-embed (synthetic embeddings instead of train + embed) times "
                    "index/recommend/evaluate/plot at 4,500 songs on a CPU: --steps build,fake-embed,index,"
                    "recommend,evaluate,plot")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--set", action="append", metavar="KEY=JSON",
                    help="vocal.yaml override for the training steps, e.g. tcae.train.compile=true")
    ap.add_argument("--laptop-cores", type=int, default=2, help="on CPU: also estimate from CPU seconds / this")
    ap.add_argument("--report", type=Path, help="print the table and estimates of a saved --json run")
    ap.add_argument("--threads", type=int, default=-1,
                    help="torch threads per step; -1 = 1 on CPU (CPU seconds of several threads on a shared box "
                    "are mostly spin-waiting), torch's default on a GPU")
    ap.add_argument("--step", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.report:
        saved = json.loads(a.report.read_text())
        report(saved["rows"], a, saved["device"].split(":")[0], saved["cpus"])
        return
    a.singers = a.singers or (6 if a.small else SEED_SINGERS)
    if a.threads < 0:
        a.threads = 1 if a.device == "cpu" else 0
    a.prepare_songs = a.prepare_songs or (4 if a.small else 32)
    a.baseline_songs = a.baseline_songs or (8 if a.small else 128)
    if a.step:
        if a.threads:
            import torch

            torch.set_num_threads(a.threads)
        c0 = _cpu_s()
        row = STEPS[a.step](a)
        row["peak_rss_mb"] = _rss_mb()
        row["cpu_s"] = row.pop("cpu_s_own", None) or _cpu_s() - c0
        print(json.dumps(row, default=str))
        return
    tmp = a.dir is None
    a.dir = (a.dir or Path(tempfile.mkdtemp(prefix="vocal-scale-"))).resolve()
    a.dir.mkdir(parents=True, exist_ok=True)
    from vocalcli.device import resolve_device

    dev = resolve_device(a.device)
    print(f"vocal seed-scale bench: {a.singers} singers x {a.songs} songs, device {dev}, {os.cpu_count()} CPUs, "
          f"dir {a.dir}", file=sys.stderr)
    rows: dict[str, dict] = {}
    for name in a.steps.split(","):
        row = run_step(name, a)
        rows[name] = row
        if "error" in row:
            print(f"  {name:18s} error: {row['error']}", file=sys.stderr)
        else:
            rate = row["n"] / max(row["wall_s"], 1e-9)
            print(f"  {name:18s} {_fmt_s(row['wall_s'])}, {rate:.2f} {row['unit']}/s, peak RSS "
                  f"{row['peak_rss_mb']:.0f} MB", file=sys.stderr)
    est, est_idle = report(rows, a, dev.type, os.cpu_count() or 1)
    if a.json:
        a.json.write_text(json.dumps({"rows": rows, "estimate_s": est, "estimate_idle_laptop_s": est_idle,
                                      "device": str(dev),
                                      "cpus": os.cpu_count(), "args": {k: str(v) for k, v in vars(a).items()}},
                                     indent=2, default=str))
    if tmp and not a.keep:
        shutil.rmtree(a.dir, ignore_errors=True)


if __name__ == "__main__":
    main()
