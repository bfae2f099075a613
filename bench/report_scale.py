"""Does `vocal report` stay usable at 4,500 songs? The same measurements at 45 songs, same run, as baseline.

    python bench/report_scale.py [--small 45] [--large 4500] [--method pca] [--no-browser]

Builds two fake projects (clustered embeddings for singers of 30 songs, an Annoy index; no audio, so no
clips: clip time is linear in songs and measured by bench/report_clips.py), writes each report, and
prints the time to write it (map, recommendations with reasons, data files), the size of data/site.js
and of the largest chunk, and, in headless Chromium (Debian's chromium + Playwright), the time from
opening index.html to the map drawn with the featured song's matches, and from a click on a map point
to its recommendations shown. The last column is large / small.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

SONGS_PER_SINGER = 30


def fake_project(root: Path, n_songs: int, method: str):  # noqa: ANN201
    from vocalcli import catalog, cepstral, index
    from vocalcli import config as config_mod
    from vocalcli import project as project_mod
    from vocalcli.vectors import l2_rows

    cfg = config_mod.Config()
    cfg.report.map_method = method
    root.mkdir(parents=True)
    proj = project_mod.Project(root)
    project_mod.write_text(proj.config_path, config_mod.to_yaml(cfg))
    for task in ("contrastive", "tcae"):
        project_mod.write_bytes(proj.checkpoint(task), f"fake {task}".encode())
    rng = np.random.default_rng(0)
    n_singers = max(2, n_songs // SONGS_PER_SINGER)
    centres = rng.normal(size=(n_singers, 64))
    rows, ids, timbre, melody = [], [], [], []
    for i in range(n_songs):
        s = i % n_singers
        sid = f"singer{s:03d}_song{i:05d}"
        rows.append({"song_id": sid, "singer": f"singer{s:03d}", "title": f"Song {i}", "source": f"s{s}/{i}.flac",
                     "duration_s": "200.0", "status": "ok", "gender": "female" if s % 2 else "male",
                     "genre": ("pop", "rock", "jazz", "folk")[s % 4], "f0_hz": f"{220 * (1 + s % 2):.1f}"})
        ids.append(sid)
        timbre.append(centres[s] + 0.6 * rng.normal(size=64))
        melody.append(rng.normal(size=32))
    catalog.write(proj.catalog, rows)
    d = proj.embeddings
    project_mod.save_npy(d / "timbre.npy", l2_rows(np.array(timbre)))
    project_mod.save_npy(d / "melody.npy", l2_rows(np.array(melody)))
    project_mod.write_csv(d / "ids.csv", [{"row": i, "song_id": s} for i, s in enumerate(ids)], ["row", "song_id"])
    project_mod.write_json(d / "meta.json", {"checkpoints": index.checkpoint_digests(proj), "n": len(ids),
                                             "timbre": cepstral.settings(cfg.timbre)})
    index.build_index(proj, cfg)
    return proj, cfg


def browser_times(index_html: Path) -> tuple[float, float] | None:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    exe = shutil.which("chromium") or shutil.which("google-chrome")
    if not exe:
        return None
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=["--no-sandbox"])
        page = b.new_page(viewport={"width": 1280, "height": 800})
        t = time.perf_counter()
        page.goto(index_html.as_uri())
        page.wait_for_selector("#song .recs li")
        load = time.perf_counter() - t
        target = page.eval_on_selector_all("#map circle.pt", """els => els.slice(els.length / 2).find(e => {
            const r = e.getBoundingClientRect();
            return document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2) === e;  // not covered
        }).dataset.id""")
        t = time.perf_counter()
        page.click(f'#map circle[data-id="{target}"]')
        page.wait_for_function(f"document.querySelector('#song .recs li') && location.hash.endsWith('{target}')")
        click = time.perf_counter() - t
        b.close()
    return load, click


def main() -> None:
    from vocalcli.report import write_report

    ap = argparse.ArgumentParser()
    ap.add_argument("--small", type=int, default=45)
    ap.add_argument("--large", type=int, default=4500)
    ap.add_argument("--method", default="pca", choices=("pca", "tsne"))
    ap.add_argument("--no-browser", action="store_true")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="vocal-bench-report-"))
    rows = {}
    for n in (a.small, a.large):
        proj, cfg = fake_project(tmp / f"p{n}", n, a.method)
        t = time.perf_counter()
        res = write_report(proj, cfg)
        write_s = time.perf_counter() - t
        data = res.out_dir / "data"
        r = {"write report (s)": write_s, "site.js (kB)": (data / "site.js").stat().st_size / 1e3,
             "largest chunk (kB)": max(f.stat().st_size for f in data.glob("songs-*.js")) / 1e3}
        bt = None if a.no_browser else browser_times(res.path)
        if bt:
            r["open -> map + matches (s)"], r["click -> matches (s)"] = bt
        rows[n] = r
    print(f"map: {a.method}; no clips (see bench/report_clips.py)")
    print(f"{'':28s} {a.small:>10d} {a.large:>10d} {'ratio':>8s}")
    for key in rows[a.small]:
        s, big = rows[a.small][key], rows[a.large].get(key, float("nan"))
        print(f"{key:28s} {s:10.2f} {big:10.2f} {big / s:8.1f}")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
