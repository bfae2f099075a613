"""The trained models, registered once: training, embed, index, the CLI and the demo iterate over TASKS.

A task's name is its vocal.yaml section, its ``checkpoints/<name>/`` and ``runs/<name>/`` folders and
its checkpoint kind. Classes are named as "module:Class" strings and imported on first use, so this
module (and `vocal --help`, which reads it) never imports torch.

Adding a model: its nn.Module and config dataclass (``from_config(section, audio)``) in models/, its
section in config.py, its trainer (a training.Task), one TaskSpec here, and a train command in cli/.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from vocalcli.errors import VocalError


def _load(ref: str) -> Any:
    module, name = ref.split(":")
    return getattr(importlib.import_module(module), name)


@dataclass(frozen=True)
class TaskSpec:
    name: str  # vocal.yaml section, checkpoints/<name>/, runs/<name>/, checkpoint kind
    command: str  # the CLI command that trains it (without 'vocal ')
    embedding: str  # embeddings/<embedding>.npy: the song vector this model makes
    model: str  # "module:Class" of the nn.Module, built from an instance of model_config
    model_config: str  # "module:Class" of its config dataclass (from_config(section, audio), to_dict())
    trainer: str  # "module:Class" of its vocalcli.training.Task

    @property
    def train_command(self) -> str:
        """What to run, as messages spell it: 'vocal train-contrastive'."""
        return f"vocal {self.command}"

    def new_model_config(self, cfg: Any) -> Any:
        """The model config for a new model, from vocal.yaml's section of this task."""
        return _load(self.model_config).from_config(getattr(cfg, self.name), cfg.audio)

    def build_model(self, model_config: Any) -> Any:
        """The nn.Module from a model config (a dict as stored in a checkpoint, or the dataclass)."""
        if isinstance(model_config, dict):
            cls = _load(self.model_config)
            model_config = (cls.from_checkpoint(model_config) if hasattr(cls, "from_checkpoint")
                            else cls(**model_config))
        return _load(self.model)(model_config)

    def trainer_class(self) -> Any:
        return _load(self.trainer)


TASKS: dict[str, TaskSpec] = {t.name: t for t in (
    TaskSpec("contrastive", "train-contrastive", "timbre",
             "vocalcli.models.encoder:TimbreEncoder", "vocalcli.models.encoder:EncoderConfig",
             "vocalcli.training:ContrastiveTask"),
    TaskSpec("tcae", "train-tcae", "melody",
             "vocalcli.models.tcae:TCAE", "vocalcli.models.tcae:TCAEModelConfig",
             "vocalcli.training:TCAETask"),
)}
"""Every trained model, in pipeline order (the contrastive encoder first: its crops set the embed hop)."""


def get(name: str) -> TaskSpec:
    try:
        return TASKS[name]
    except KeyError:
        raise VocalError(f"unknown model {name!r}; use one of {', '.join(TASKS)}") from None
