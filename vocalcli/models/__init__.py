"""The networks: each nn.Module is rebuilt from its own config dataclass (stored in the checkpoint)."""

from vocalcli.models.encoder import EncoderConfig, TimbreEncoder
from vocalcli.models.tcae import TCAE, TCAEModelConfig, melody_embedding

__all__ = ["TCAE", "EncoderConfig", "TCAEModelConfig", "TimbreEncoder", "melody_embedding"]
