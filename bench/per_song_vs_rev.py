"""Per-song CPU time of prepare and embed: this working tree against an older commit, in the same run.

    python bench/per_song_vs_rev.py --base REV [--songs-dir DIR] [--n 4] [--rounds 3]

Issue 9's guard ("no slower than before by more than 1.5x per song in prepare/embed") needs the old
code timed next to the new on the same files and the same machine: absolute times on a shared box
drift more than the effect. REV is checked out into a temporary git worktree; both trees then run the
same driver in child processes, interleaved round by round (best round kept), one thread each:

- prepare: ``prepare.prepare_query`` on each file, the very pipeline `vocal prepare` runs per song
  (decode the window, mono, 16 kHz, MR removal: harmonic, or `--separate none`; pitch track, 48-band mel);
- embed: ``embed.Embedder.embed`` on each of those mels (timbre crops through the encoder, the cepstral
  signature, the TCAE latent and the melody vector from its beat).

REV must have bench/seedproject.py (408e910, the last commit before issue 9's changes, or later). The
checkpoints are made once by the *old* tree (untrained, full-size models: speed does not depend on
the weights) because a newer tree loads older checkpoints, not the other way round; a tree whose encoder
reads only the loudest frames is set to its default fraction, as a checkpoint it trains would carry. Files: N songs of
``--songs-dir``, else the shared corpus's band mixes (/work/data/corpus-band/mixtures) where they exist,
else 2:40 songs synthesized by the old tree; round-robin over singers. Prints CPU seconds per song for
each tree and the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPUS = Path("/work/data/corpus-band/mixtures")
"""Default songs: the shared corpus's band mixes, where they have been generated."""

_SETUP = r"""
import sys
from pathlib import Path
tree, proj_dir, songs_out = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
sys.path[:0] = [tree, tree + "/bench"]
import seedproject
from vocalcli import config as config_mod, training
proj = seedproject.build(proj_dir, 2, 4, workers=1)
cfg = config_mod.override(proj.load_config(), {"contrastive.train.epochs": 0, "tcae.train.epochs": 0,
                                               "prepare.separate": "harmonic"})
for task in ("contrastive", "tcae"):
    training.train(task, proj, cfg, "cpu")
if songs_out.name != "-":
    from vocalcli import synth
    synth.make_library(songs_out, n_singers=2, songs_per_singer=int(sys.argv[4]) // 2 + 1, seconds=160.0)
"""

_DRIVER = r"""
import json, os, sys, time
from pathlib import Path
tree, proj_dir, files = sys.argv[1], Path(sys.argv[2]), sys.argv[3:]
sys.path.insert(0, tree)
import torch
torch.set_num_threads(1)
from vocalcli import project as project_mod
from vocalcli.embed import Embedder
from vocalcli.prepare import prepare_query
proj = project_mod.Project(proj_dir)
cfg = proj.load_config()
emb = Embedder.from_project(proj, "cpu")
if hasattr(emb, "encoder_loud_fraction"):  # the old tree made the checkpoints: read as today's default trains
    from vocalcli.config import Config
    emb.encoder_loud_fraction = Config().contrastive.loud_fraction
method = os.environ.get("VOCAL_BENCH_SEPARATE", "harmonic")


def one(f):  # trees before the f0 track was stored return (mel, info); later ones (mel, info, track)
    out = prepare_query(f, cfg, method)
    return out[0], (out[2] if len(out) > 2 else None)


def embed_one(mel, track):
    return emb.embed(mel) if track is None else emb.embed(mel, track)


embed_one(*one(files[0]))  # warm-up: imports, caches, first-call costs
prep, embed = [], []
for f in files:
    t = time.process_time()
    mel, track = one(f)
    prep.append(time.process_time() - t)
    t = time.process_time()
    embed_one(mel, track)
    embed.append(time.process_time() - t)
print(json.dumps({"prepare": sum(prep) / len(prep), "embed": sum(embed) / len(embed)}))
"""


def _env() -> dict[str, str]:
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
        env[var] = "1"
    env.pop("PYTHONPATH", None)
    return env


def _files(root: Path, n: int) -> list[str]:
    """``n`` songs of ``root`` (songs/<singer>/<song>, as `vocal prepare` finds them), round-robin over singers."""
    from vocalcli.prepare import discover

    by_singer: dict[str, list[str]] = {}
    for song in discover(root):
        by_singer.setdefault(song.singer, []).append(song.path)
    picked: list[str] = []
    queues = list(by_singer.values())
    while len(picked) < n and any(queues):
        for q in queues:
            if q and len(picked) < n:
                picked.append(q.pop(0))
    return picked


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", required=True, help="the older commit to compare with (e.g. 408e910)")
    ap.add_argument("--songs-dir", type=Path, help="songs/<singer>/<song> to time (default: see above)")
    ap.add_argument("--n", type=int, default=4, help="songs timed per round")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the best of each tree is kept")
    ap.add_argument("--separate", default="harmonic", choices=("harmonic", "none"),
                    help="MR removal of the timed prepare (none = the clean-stems path)")
    a = ap.parse_args()
    os.environ["VOCAL_BENCH_SEPARATE"] = a.separate

    known = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--verify", "-q", f"{a.base}^{{commit}}"],
                           capture_output=True, text=True)
    if known.returncode != 0:
        print(f"--base {a.base}: not a commit of {ROOT} (see 'git log --oneline')", file=sys.stderr)
        return 2
    if not (subprocess.run(["git", "-C", str(ROOT), "cat-file", "-e", f"{a.base}:bench/seedproject.py"],
                           capture_output=True).returncode == 0):
        print(f"--base {a.base}: has no bench/seedproject.py; use 408e910 or a later commit", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="vocal-vs-rev-"))
    base_tree = tmp / "base"
    try:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(base_tree), a.base],
                       check=True)
        songs = a.songs_dir or (CORPUS if CORPUS.is_dir() else None)
        synth_dir = tmp / "songs"
        subprocess.run([sys.executable, "-c", _SETUP, str(base_tree), str(tmp / "proj"),
                        "-" if songs else str(synth_dir), str(a.n)], check=True, env=_env(),
                       stdout=subprocess.DEVNULL)
        files = _files(songs or synth_dir, a.n)
        if not files:
            print("no songs found to time", file=sys.stderr)
            return 2
        best: dict[str, dict[str, float]] = {}
        for r in range(a.rounds):
            for name, tree in (("base", base_tree), ("this tree", ROOT)):
                run = subprocess.run([sys.executable, "-c", _DRIVER, str(tree), str(tmp / "proj"), *files],
                                     env=_env(), capture_output=True, text=True)
                if run.returncode != 0:
                    print(f"the {name} driver failed:\n{run.stderr[-3000:]}", file=sys.stderr)
                    return 1
                got = json.loads(run.stdout.strip().splitlines()[-1])
                for step, s in got.items():
                    best.setdefault(name, {})[step] = min(best.get(name, {}).get(step, float("inf")), s)
                print(f"round {r + 1} {name:9s} " + "  ".join(f"{k} {v:.3f} s" for k, v in got.items()),
                      flush=True)
        rev = subprocess.run(["git", "-C", str(base_tree), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True).stdout.strip()
        print(f"\nCPU seconds per song, best of {a.rounds} rounds, {len(files)} songs, one thread")
        print(f"{'step':8s} {'base ' + rev:>14s} {'this tree':>10s} {'ratio':>7s}")
        for step in ("prepare", "embed"):
            b, t = best["base"][step], best["this tree"][step]
            print(f"{step:8s} {b:14.3f} {t:10.3f} {t / b:6.2f}x")
        return 0
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base_tree)],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
