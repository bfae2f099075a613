"""vocal as a Python library, without the CLI: prepare a folder of songs, embed them, query the index.

    python examples/library_api.py SONGS_DIR PROJECT_DIR [QUERY_AUDIO]

Each step is one library call that returns its results (the library never prints) and writes its
artefacts into PROJECT_DIR exactly as the `vocal` commands do, so the two can be mixed: train with
`vocal train-tcae --gpu` on a big machine, query from a script here. The models are trained only when
the project has none yet; a second run reuses everything that is done.
"""

from __future__ import annotations

import sys
from pathlib import Path

from vocalcli import balance, catalog, embed, index, prepare, project, recommend, training
from vocalcli.tasks import TASKS


def main(songs_dir: Path, project_dir: Path, query: Path | None = None, device: str = "auto"
         ) -> list[recommend.Recommendation]:
    proj = project.init(project_dir)  # vocal.yaml with every setting, unless one is there already
    cfg = proj.load_config()

    # 1. decode the analysed window of every song, remove the accompaniment, store log-mels;
    #    every file gets a row in catalog.csv, a file that fails gets its reason there
    prepared = prepare.prepare_files(proj, Path(songs_dir), cfg)
    print(f"prepared {prepared.counts} in {prepared.seconds:.0f} s")

    # 2. the timbre encoder and the melody autoencoder, trained once on a balanced split
    if not all(proj.checkpoint(task).is_file() for task in TASKS):
        split = balance.balance(catalog.read(proj), cfg.balance, cfg.seed)
        project.write_csv(proj.balanced, split.rows, project.BALANCED_FIELDS)
        for task in TASKS:
            fit = training.train(task, proj, cfg, device)
            print(f"trained {task}: {fit.epochs} epochs, loss {fit.metrics.get('train_loss', float('nan')):.3f}")

    # 3. a timbre and a melody vector per song, and the Annoy index over them
    embed.embed_project(proj, cfg, device=device)
    built = index.build_index(proj, cfg)
    print(f"indexed {built.n} songs (recall@10 vs exact search {built.recall_at_10:.3f})")

    # 4. songs sung like a file (by default the first prepared song, so the script runs as is)
    if query is None:
        first = catalog.ok_rows(proj)[0]
        query = Path(songs_dir) / first["source"]
    result = recommend.recommend(proj, cfg, audio=Path(query), k=5, device=device)
    print(f"sung like {query}:")
    for item in result.items:
        print(f"  {item.rank}. {item.singer} - {item.title}  timbre {item.timbre_sim:.2f}  "
              f"melody {item.melody_sim:.2f}")
    return result.items


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__.split("\n\n")[1])
    main(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]) if len(sys.argv) == 4 else None)
