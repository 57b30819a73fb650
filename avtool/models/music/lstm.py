"""LSTM language model over the chorale token stream (the survey's RNN-based symbolic models).

Input at position ``i``: the embedding of token ``i`` plus the conditioning embedding
(:class:`~avtool.models.music.tokens.ConditionEmbedding`: beat, fermata, voice) of position
``i + 1``, the token to predict. A stack of LSTM layers and a linear layer give the logits of
token ``i + 1`` over :data:`~avtool.models.music.tokens.VOCAB_SIZE` tokens.

    model = build(MusicLSTMConfig.small())              # or load("music_lstm.pt")
    logits, state = model(tokens[:, :-1], cond[:, 1:])  # (B, L, V)
    logp = model.log_probs(tokens, cond)                # (N,) per-token log-likelihood
    decoder = model.decoder(batch)                      # step by step, for sampling

Checkpoints are ``{"format", "config", "state_dict", "vocab"}``
(:meth:`~avtool.models.music.tokens.NeuralFamily.to_checkpoint`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from avtool.errors import ModelError
from avtool.models.music.tokens import (
    PAD,
    VOCAB_SIZE,
    ConditionEmbedding,
    NeuralFamily,
    StepDecoder,
    TokenLanguageModel,
)
from avtool.models.presets import PresetConfig

__all__ = [
    "PRESETS",
    "MusicLSTM",
    "MusicLSTMConfig",
    "build",
    "infer",
    "load",
    "to_checkpoint",
]

#: Preset names accepted by :meth:`MusicLSTMConfig.preset`.
PRESETS = ("small", "debug")
FORMAT = "avtool-music-lstm-1"


@dataclass(frozen=True)
class MusicLSTMConfig(PresetConfig):
    """An LSTM token model.

    Attributes:
        embed_dim: token and conditioning embedding size.
        hidden_size: LSTM state size.
        num_layers: stacked LSTM layers.
        dropout: dropout on the embeddings, between layers and before the output layer.
    """

    presets: ClassVar[tuple[str, ...]] = PRESETS
    family_name: ClassVar[str] = "music LSTM"

    embed_dim: int = 128
    hidden_size: int = 256
    num_layers: int = 2
    dropout: float = 0.1

    def __post_init__(self) -> None:
        if min(self.embed_dim, self.hidden_size, self.num_layers) < 1:
            raise ModelError(f"invalid music LSTM config: {self}")
        if not 0.0 <= self.dropout < 1.0:
            raise ModelError(f"music LSTM dropout must be in [0, 1), not {self.dropout}")

    @classmethod
    def small(cls) -> MusicLSTMConfig:
        """Two layers of 256 units, 1.0 M parameters (4 MB): trains on a CPU in minutes."""
        return cls()

    @classmethod
    def debug(cls) -> MusicLSTMConfig:
        """One layer of 32 units (20 k parameters): for tests."""
        return cls(embed_dim=16, hidden_size=32, num_layers=1, dropout=0.0)


LSTMState = tuple[torch.Tensor, torch.Tensor]


class MusicLSTM(TokenLanguageModel):
    """Token embedding + conditioning -> LSTM -> next-token logits."""

    def __init__(self, config: MusicLSTMConfig):
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(VOCAB_SIZE, config.embed_dim, padding_idx=PAD)
        self.cond = ConditionEmbedding(config.embed_dim)
        self.dropout = nn.Dropout(config.dropout)
        self.lstm = nn.LSTM(
            config.embed_dim,
            config.hidden_size,
            num_layers=config.num_layers,
            dropout=config.dropout if config.num_layers > 1 else 0.0,
            batch_first=True,
        )
        self.out = nn.Linear(config.hidden_size, VOCAB_SIZE)

    def forward(
        self,
        tokens: torch.Tensor,
        next_cond: torch.Tensor,
        state: LSTMState | None = None,
    ) -> tuple[torch.Tensor, LSTMState]:
        """Next-token logits.

        Args:
            tokens: ``(B, L)`` int64 input tokens.
            next_cond: ``(B, L, COND_SIZE)`` int64 conditioning of the token each position
                predicts (the row after the input token's own).
            state: ``(h, c)``, each ``(num_layers, B, hidden_size)``, from a previous call.

        Returns:
            ``(B, L, VOCAB_SIZE)`` logits and the final state.
        """
        x = self.dropout(self.embed(tokens) + self.cond(next_cond))
        y, state = self.lstm(x, state)
        return self.out(self.dropout(y)), state

    def decoder(self, batch: int) -> _LSTMDecoder:
        """A step-by-step decoder for ``batch`` pieces (see :mod:`music_generate`)."""
        return _LSTMDecoder(self, batch)


class _LSTMDecoder(StepDecoder):
    """Carries the LSTM state from one position to the next."""

    def __init__(self, model: MusicLSTM, batch: int):
        super().__init__(model, batch)
        self.state: LSTMState | None = None

    def _step(self, tokens: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        logits, self.state = self.model(tokens, cond, self.state)
        return logits


#: The family's one build / save / load path (:class:`~avtool.models.music.tokens.NeuralFamily`).
FAMILY: NeuralFamily[MusicLSTMConfig, MusicLSTM] = NeuralFamily(
    family="music_lstm",
    format_tag=FORMAT,
    what="music LSTM",
    config_type=MusicLSTMConfig,
    model_type=MusicLSTM,
)
build = FAMILY.build
to_checkpoint = FAMILY.to_checkpoint
load = FAMILY.load
load_entry = FAMILY.load_entry
infer = FAMILY.infer
