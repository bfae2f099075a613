"""`vocal demo --quick` end to end (tiny training settings, so it runs in well under a minute)."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from typer.testing import CliRunner

from vocalcli import demo
from vocalcli.cli import app


def test_demo_quick_runs_the_whole_pipeline(tmp_path: Path) -> None:
    root = tmp_path / "demo"
    root.mkdir()
    cfg = yaml.safe_load(demo.demo_config_text(demo.QUICK))
    for sec in ("contrastive", "tcae"):
        cfg[sec]["train"].update(epochs=1, steps_per_epoch=2, batch_size=4, warmup_steps=1)
    (root / "vocal.yaml").write_text(yaml.safe_dump(cfg))
    r = CliRunner().invoke(app, ["demo", str(root), "--quick", "--json", "-w", "1"])
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    assert report["synthesize"]["songs"] == 48 and report["synthesize"]["singers"] == 6
    assert report["prepare"]["counts"] == {"ok": 45, "too_short": 3}
    assert report["balance"]["kept"] == 6 and report["balance"]["dropped"] == []
    for name in ("contrastive", "tcae"):
        assert (root / report[f"train-{name}"]["checkpoint"]).is_file()
    assert report["embed"]["n"] == 45
    assert report["index"]["songs"] == 45 and report["index"]["recall_at_10"] >= 0.99
    assert len(report["recommend"]["top"]) == 5
    assert report["recommend"]["query"].startswith("query.flac (a new song by ")  # not a library file
    assert (root / "query.flac").is_file() and not list((root / "songs").glob("**/query.flac"))
    assert set(report["evaluate"]) >= {"singer_id.top1", "singer_id.top1_mfcc", "melody.map", "melody.map_chroma"}
    assert "docs/quality.md" in report["evaluate"]["caveat"]

    assert (root / "map.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert report["report"]["songs"] == 45 and report["report"]["clips_written"] == 45
    page = root / "report" / "index.html"
    assert Path(report["report"]["page"]) == page and page.is_file()
    assert "report/index.html" in r.output  # the path to open is printed
    # a rerun reuses the songs and the prepared mels
    r = CliRunner().invoke(app, ["demo", str(root), "--quick", "--json", "-w", "1"])
    again = json.loads(r.stdout)
    assert again["synthesize"].get("reused") and again["prepare"]["processed"] == 0
    assert again["report"]["clips_reused"] == 45 and again["report"]["clips_written"] == 0


def test_demo_names_the_metrics_that_lost_to_their_baseline():
    from vocalcli.evaluate import below_baseline

    ev = {"singer_id.top1": 0.5, "singer_id.top1_mfcc": 0.8, "singer_id.eer": 0.3, "singer_id.eer_mfcc": 0.2,
          "melody.map": 0.6, "melody.map_chroma": 0.4, "gender.balanced_accuracy": None,
          "gender.balanced_accuracy_mfcc": 0.7, "index.recall_at_10": 1.0}
    assert below_baseline(ev) == ["singer_id.top1 0.50 (baseline 0.80)", "singer_id.eer 0.30 (baseline 0.20)"]
