"""The trainers under torchrun: 2 CPU processes on gloo end with identical weights; rank 0 writes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import torch
from model_fixtures import make_project, tiny_config


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_gloo_processes_end_with_identical_weights(tmp_path):
    cfg = tiny_config(epochs=2, steps_per_epoch=2)
    cfg.tcae.train.epochs, cfg.tcae.train.steps_per_epoch = 1, 2
    proj = make_project(tmp_path / "p", cfg)
    out = tmp_path / "out"
    out.mkdir()
    script = tmp_path / "ddp_run.py"
    script.write_text(textwrap.dedent("""
        import os, sys, torch
        import torch.distributed as dist
        from vocalcli import project, training
        from vocalcli.config import load
        from vocalcli.device import seed_everything
        torch.set_num_threads(1)
        from pathlib import Path
        p = project.Project(Path(sys.argv[1]))
        cfg = load(p.config_path)
        rank, world = training.dist_info()
        dev = torch.device("cpu")
        for name, cls in (("contrastive", training.ContrastiveTask), ("tcae", training.TCAETask)):
            seed_everything(cfg.seed + rank)  # different init per rank: DDP must sync it from rank 0
            task = cls(p, cfg, dev, rank, world)
            r = training.fit(task, cfg, dev, checkpoints=p.checkpoints / name, run_root=p.runs / name)
            torch.save({"model": task.model.state_dict(), "step": r.step},
                       os.path.join(sys.argv[2], f"{name}-{rank}.pt"))
        dist.barrier()
        dist.destroy_process_group()
    """))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port",
           str(_free_port()), str(script), str(proj.root), str(out)]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    for name, steps in (("contrastive", 4), ("tcae", 2)):
        a = torch.load(out / f"{name}-0.pt", weights_only=True)
        b = torch.load(out / f"{name}-1.pt", weights_only=True)
        assert a["step"] == b["step"] == steps
        assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"]), name
        assert proj.checkpoint(name, "last").exists()
    assert len(list(Path(proj.runs / "contrastive").iterdir())) == 1  # only rank 0 made a run dir
