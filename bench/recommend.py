"""End-to-end time of `vocal recommend FILE` for a 3-minute song (target <= 2 s on CPU, harmonic MR removal).

Needs a project with trained models and an index (e.g. the one `vocal demo` makes):

    python bench/recommend.py -p PROJECT [--query song.flac] [--repeats 5] [--separate harmonic]

Without --query, a 3-minute song (voice + accompaniment) is synthesized with vocalcli.synth.
Reports (medians over repeats, in seconds):
  * stages of one in-process query: open index (mmap + staleness digests), load models, prepare (decode,
    resample, separation, mel), embed, search + rescore;
  * warm:  recommend() in a process that has already imported everything (a server's latency);
  * cold:  `vocal recommend FILE --json` as a fresh process (includes Python + torch import).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def synth_query(path: Path, seconds: float = 180.0, sr: int = 44100) -> Path:
    import soundfile as sf

    from vocalcli import synth

    singer = synth.default_singers(3, seed=7)[2]
    vocal, accomp = synth.sing(singer, melody_id=1, seconds=seconds, sr=sr, seed=3)
    y = 0.7 * vocal + 0.5 * accomp
    sf.write(path, (0.9 * y / max(np.abs(y).max(), 1e-9)).astype(np.float32), sr)
    return path


def timed(fn, *args, **kw):
    t0 = time.perf_counter()
    out = fn(*args, **kw)
    return out, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-p", "--project", type=Path, required=True)
    ap.add_argument("--query", type=Path)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--separate", default="harmonic")
    ap.add_argument("-k", type=int, default=10)
    args = ap.parse_args()

    from vocalcli import project as project_mod
    from vocalcli.embed import Embedder
    from vocalcli.index import load_index
    from vocalcli.prepare import prepare_query
    from vocalcli.recommend import mode_mix, rank_rows, recommend

    proj = project_mod.find(args.project)
    cfg = proj.load_config()
    tmp = Path(tempfile.mkdtemp(prefix="vocal-bench-"))
    query = args.query or synth_query(tmp / "query-3min.flac")
    import soundfile as sf

    print(f"query {query} ({sf.info(str(query)).duration:.0f} s), separation {args.separate}, "
          f"project {proj.root}", file=sys.stderr)

    stages: dict[str, list[float]] = {k: [] for k in ("index", "models", "prepare", "embed", "search")}
    for _ in range(args.repeats):
        idx, t = timed(load_index, proj, cfg)
        stages["index"].append(t)
        emb, t = timed(Embedder.from_project, proj, "cpu")
        stages["models"].append(t)
        (mel, _, track), t = timed(prepare_query, query, cfg, args.separate)
        stages["prepare"].append(t)
        (qt, qm), t = timed(emb.embed, mel, track)
        stages["embed"].append(t)
        _, t = timed(rank_rows, idx, qt, qm, mode_mix("both", idx.weights), lambda r: True, args.k)
        stages["search"].append(t)
    warm = [timed(recommend, proj, cfg, audio=query, k=args.k, separate=args.separate, device="cpu")[1]
            for _ in range(args.repeats)]
    cold = []
    for _ in range(max(1, args.repeats // 2)):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "vocalcli", "-q", "recommend", str(query), "-p", str(proj.root),
                        "--separate", args.separate, "--device", "cpu", "--json"],
                       check=True, capture_output=True)
        cold.append(time.perf_counter() - t0)

    med = {k: statistics.median(v) for k, v in stages.items()}
    print(f"{'stage':<10}{'median s':>10}")
    for k, v in med.items():
        print(f"{k:<10}{v:>10.3f}")
    print(f"{'sum':<10}{sum(med.values()):>10.3f}")
    print(f"{'warm':<10}{statistics.median(warm):>10.3f}   recommend() in a warm process")
    print(f"{'cold':<10}{statistics.median(cold):>10.3f}   `vocal recommend FILE` as a new process")
    print(f"songs in index: {len(idx)}; target <= 2 s")


if __name__ == "__main__":
    main()
