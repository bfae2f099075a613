"""`vocal train-contrastive`, `vocal train-tcae`, `vocal embed` through Typer's CliRunner."""

from __future__ import annotations

import json

import pytest
import torch
from model_fixtures import make_project, tiny_config
from typer.testing import CliRunner

from vocalcli.cli import app

torch.set_num_threads(1)
runner = CliRunner()


@pytest.fixture()
def proj(tmp_path):
    return make_project(tmp_path / "p", tiny_config(epochs=1, steps_per_epoch=1))


def test_train_both_then_embed(proj):
    r = runner.invoke(app, ["train-contrastive", "-p", str(proj.root), "--epochs", "1", "--device", "cpu"])
    assert r.exit_code == 0, r.output
    assert "vocal train-tcae" in r.output  # says what is missing for embeddings
    r = runner.invoke(app, ["train-tcae", "-p", str(proj.root), "--epochs", "1", "--batch-size", "2",
                            "--json"])
    assert r.exit_code == 0, r.output
    assert "receptive field" in r.output
    assert (proj.embeddings / "meta.json").exists()  # written at the end of training
    r = runner.invoke(app, ["embed", "-p", str(proj.root), "--json"])
    assert r.exit_code == 0, r.output
    payload = json.loads(r.stdout[r.stdout.index("{"):])
    assert payload["n"] == 20


def test_pitch_and_stretch_roles_and_resume_flags(proj):
    args = ["train-contrastive", "-p", str(proj.root), "--pitch-shift", "pos", "--time-stretch", "none",
            "--no-embed"]
    assert runner.invoke(app, args).exit_code == 0
    r = runner.invoke(app, [*args, "--pitch-shift", "neg", "--resume"])  # settings differ from last.pt
    assert r.exit_code == 1 and "contrastive.pitch_shift" in r.output and "--no-resume" in r.output
    assert runner.invoke(app, [*args, "--no-resume"]).exit_code == 0


def test_grid_prints_comparable_table(proj):
    r = runner.invoke(app, ["train-contrastive", "-p", str(proj.root), "--grid", "--epochs", "1", "--json"])
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout[r.stdout.index("["):])
    assert [(x["pitch_shift"], x["time_stretch"]) for x in rows] == [
        ("pos", "pos"), ("pos", "neg"), ("neg", "pos"), ("neg", "neg")]
    assert all(x["loss_over_ln_n"] > 0 and x["val_singer_acc"] is not None for x in rows)
    assert not proj.checkpoint("contrastive", "last").exists()  # the grid never touches checkpoints


def test_gpu_without_cuda_is_one_clear_line(proj):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    r = runner.invoke(app, ["train-tcae", "-p", str(proj.root), "--gpu"])
    assert r.exit_code == 1 and "CUDA was requested" in r.output and "Traceback" not in r.output


def test_bad_inputs(tmp_path, proj):
    r = runner.invoke(app, ["train-tcae", "-p", str(tmp_path / "nowhere")])
    assert r.exit_code == 1 and "vocal prepare" in r.output
    r = runner.invoke(app, ["embed", "-p", str(proj.root)])
    assert r.exit_code == 1 and "vocal train-contrastive" in r.output
    r = runner.invoke(app, ["train-contrastive", "-p", str(proj.root), "--pitch-shift", "sideways"])
    assert r.exit_code == 2
    proj.balanced.unlink()
    r = runner.invoke(app, ["train-contrastive", "-p", str(proj.root)])
    assert r.exit_code == 1 and "vocal balance" in r.output
