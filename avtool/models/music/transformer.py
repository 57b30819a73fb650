"""Decoder-only Transformer with relative position attention (Music Transformer).

Each attention head adds a learned relative-position term to its logits (Shaw et al. 2018),
computed without materialising a ``(L, L, d)`` tensor by Huang et al.'s "skew" trick::

    logits[i, j] = (q_i . k_j + q_i . E[clip(i - j)]) / sqrt(d_head)

where ``E`` holds ``window + PREFIX_LENGTH`` learned vectors per head (one per distance; longer
distances share the last). There are no absolute positions: a piece shifted in time (or padded
in front, the padding masked) gets the same outputs, and pieces longer than the training crops
pose no problem.

Attention is local: a token sees the ``window`` tokens before it (itself included) plus the
sequence's BOS and key tokens, which stay visible however long the piece gets. Training crops
(``BOS KEY`` + at most ``window`` step tokens) fit in one window, so training, held-out scoring
and step-by-step sampling all see the same kind of context.

    model = build(MusicTransformerConfig.small())   # or load("music_transformer.pt")
    logits = model(tokens[:, :-1], cond[:, 1:])     # (B, L, V)
    logp = model.log_probs(tokens, cond)            # (N,) per-token log-likelihood
    decoder = model.decoder(batch)                  # key/value cache, for sampling

Checkpoints are ``{"format", "config", "state_dict", "vocab"}``
(:meth:`~avtool.models.music.tokens.NeuralFamily.to_checkpoint`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from avtool.errors import ModelError
from avtool.models.music.tokens import (
    PAD,
    PREFIX_LENGTH,
    VOCAB_SIZE,
    ConditionEmbedding,
    NeuralFamily,
    StepDecoder,
    TokenLanguageModel,
)
from avtool.models.presets import PresetConfig

__all__ = [
    "PRESETS",
    "MusicTransformer",
    "MusicTransformerConfig",
    "RelativeSelfAttention",
    "attention_mask",
    "build",
    "infer",
    "load",
    "relative_logits",
    "to_checkpoint",
]

#: Preset names accepted by :meth:`MusicTransformerConfig.preset`.
PRESETS = ("small", "debug")
FORMAT = "avtool-music-transformer-1"


@dataclass(frozen=True)
class MusicTransformerConfig(PresetConfig):
    """A decoder-only Transformer token model.

    Attributes:
        d_model: width of the residual stream.
        num_heads: attention heads (``d_model`` must divide by it).
        num_layers: Transformer blocks.
        ff_dim: hidden width of the feed-forward layers.
        dropout: dropout on the embeddings and the residual branches.
        window: tokens a position attends to (itself and the ``window - 1`` before it), plus
            the BOS and key tokens; also the longest training crop. 256 tokens = 4 bars of 4/4.
    """

    presets: ClassVar[tuple[str, ...]] = PRESETS
    family_name: ClassVar[str] = "music Transformer"

    d_model: int = 128
    num_heads: int = 4
    num_layers: int = 4
    ff_dim: int = 512
    dropout: float = 0.1
    window: int = 256

    def __post_init__(self) -> None:
        if min(self.d_model, self.num_heads, self.num_layers, self.ff_dim, self.window) < 1:
            raise ModelError(f"invalid music Transformer config: {self}")
        if self.d_model % self.num_heads:
            raise ModelError(
                f"d_model {self.d_model} must be a multiple of num_heads {self.num_heads}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ModelError(f"music Transformer dropout must be in [0, 1), not {self.dropout}")

    @property
    def max_distance(self) -> int:
        """Relative distances with their own embedding: 0 .. window + PREFIX_LENGTH - 1."""
        return self.window + PREFIX_LENGTH

    @classmethod
    def small(cls) -> MusicTransformerConfig:
        """4 layers of width 128, 4 heads, a 4-bar window: 1.0 M parameters (4 MB)."""
        return cls()

    @classmethod
    def debug(cls) -> MusicTransformerConfig:
        """2 layers of width 32, a 16-token window (41 k parameters): for tests."""
        return cls(d_model=32, num_heads=2, num_layers=2, ff_dim=64, dropout=0.0, window=16)


def attention_mask(length: int, window: int, device: torch.device | None = None) -> torch.Tensor:
    """Which keys each query may attend to: ``(length, length)`` bool, True = allowed.

    Causal, limited to the last ``window`` positions, plus the first PREFIX_LENGTH positions.
    """
    i = torch.arange(length, device=device)[:, None]
    j = torch.arange(length, device=device)[None, :]
    return (j <= i) & ((i - j < window) | (j < PREFIX_LENGTH))


def relative_logits(q: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """``q_i . E[clip(i - j)]`` for every query ``i`` and key ``j <= i`` (the skew trick).

    Args:
        q: ``(B, H, L, d)`` queries.
        table: ``(H, R, d)`` one embedding per relative distance 0..R-1 (longer ones clip).

    Returns:
        ``(B, H, L, L)``; entries above the diagonal (``j > i``) are meaningless and must be
        masked.
    """
    length = q.shape[-2]
    # Column m of `ordered` stands for distance L-1-m, so row i holds every distance 0..L-1.
    distance = (length - 1 - torch.arange(length, device=q.device)).clamp(max=table.shape[1] - 1)
    ordered = table[:, distance]  # (H, L, d)
    scores = torch.einsum("bhld,hmd->bhlm", q, ordered)
    # Pad a column in front, fold to (L+1, L) and drop the first row: entry (i, j) then
    # holds scores[i, L-1-i+j], i.e. distance i - j (Huang et al. 2018, section 3.4.1).
    batch, heads = scores.shape[:2]
    padded = F.pad(scores, (1, 0)).reshape(batch, heads, length + 1, length)
    return padded[:, :, 1:]


class RelativeSelfAttention(nn.Module):
    """Multi-head self-attention with per-head relative position embeddings."""

    def __init__(self, config: MusicTransformerConfig):
        super().__init__()
        self.num_heads = config.num_heads
        self.head_dim = config.d_model // config.num_heads
        self.qkv = nn.Linear(config.d_model, 3 * config.d_model)
        self.proj = nn.Linear(config.d_model, config.d_model)
        self.relative = nn.Parameter(
            torch.randn(config.num_heads, config.max_distance, self.head_dim) * 0.02
        )

    def _heads(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        batch, length, _ = x.shape
        qkv = self.qkv(x).reshape(batch, length, 3, self.num_heads, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each (B, H, L, d)
        return q, k, v

    def forward(self, x: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        """Attend.

        Args:
            x: ``(B, L, d_model)``.
            allowed: ``(L, L)`` or ``(B, 1, L, L)`` bool, True where query ``i`` may see key
                ``j``; it must never allow ``j > i`` (the relative term is undefined there).

        Returns:
            ``(B, L, d_model)``.
        """
        q, k, v = self._heads(x)
        scores = q @ k.transpose(-1, -2) + relative_logits(q, self.relative)
        scores = scores.mul_(1.0 / math.sqrt(self.head_dim)).masked_fill_(~allowed, -math.inf)
        # Written out rather than scaled_dot_product_attention: on the CPU its math path
        # spends more time checking a float mask and drawing dropout than multiplying.
        y = torch.softmax(scores, dim=-1) @ v
        return self.proj(y.transpose(1, 2).reshape(x.shape))

    def step(
        self, x: torch.Tensor, cache: dict[str, torch.Tensor], position: int, window: int
    ) -> torch.Tensor:
        """Attend from one new position, using and extending a key/value cache.

        Args:
            x: ``(B, 1, d_model)`` the new position's input.
            cache: ``{"k", "v"}`` each ``(B, H, capacity, d)``; grown as needed, in place.
            position: the new position's index (0 for the first token).
            window: the attention window (see :class:`MusicTransformerConfig`).

        Returns:
            ``(B, 1, d_model)``.
        """
        q, k, v = self._heads(x)
        if "k" not in cache or cache["k"].shape[2] <= position:
            capacity = max(64, 2 * position + 1)
            for name, new in (("k", k), ("v", v)):
                grown = new.new_zeros(*new.shape[:2], capacity, self.head_dim)
                if name in cache:
                    grown[:, :, :position] = cache[name][:, :, :position]
                cache[name] = grown
        cache["k"][:, :, position] = k[:, :, 0]
        cache["v"][:, :, position] = v[:, :, 0]
        # Scores of q against every distance 0..R-1, then laid out like the allowed keys.
        table = self.relative.shape[1]
        rel = q @ self.relative.transpose(1, 2)  # (B, H, 1, R)
        first = position - window + 1
        if first <= PREFIX_LENGTH:
            # Every earlier key is allowed; their distances position..0 are all < R.
            keys, values = cache["k"][:, :, : position + 1], cache["v"][:, :, : position + 1]
            bias = rel[..., : position + 1].flip(-1)
        else:
            # The prefix (both beyond the last distance, so clipped) and the window.
            keys = torch.cat(
                [cache["k"][:, :, :PREFIX_LENGTH], cache["k"][:, :, first : position + 1]], 2
            )
            values = torch.cat(
                [cache["v"][:, :, :PREFIX_LENGTH], cache["v"][:, :, first : position + 1]], 2
            )
            far = rel[..., table - 1 :].expand(*rel.shape[:-1], PREFIX_LENGTH)
            bias = torch.cat([far, rel[..., :window].flip(-1)], dim=-1)
        y = F.scaled_dot_product_attention(
            q, keys, values, attn_mask=bias / math.sqrt(self.head_dim)
        )
        return self.proj(y.transpose(1, 2).reshape(x.shape))


class _Block(nn.Module):
    def __init__(self, config: MusicTransformerConfig):
        super().__init__()
        self.norm1 = nn.LayerNorm(config.d_model)
        self.attn = RelativeSelfAttention(config)
        self.norm2 = nn.LayerNorm(config.d_model)
        self.ff = nn.Sequential(
            nn.Linear(config.d_model, config.ff_dim),
            nn.GELU(),
            nn.Linear(config.ff_dim, config.d_model),
        )
        self.drop = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        x = x + self.drop(self.attn(self.norm1(x), allowed))
        return x + self.drop(self.ff(self.norm2(x)))

    def step(self, x: torch.Tensor, cache: dict, position: int, window: int) -> torch.Tensor:
        x = x + self.attn.step(self.norm1(x), cache, position, window)
        return x + self.ff(self.norm2(x))


class MusicTransformer(TokenLanguageModel):
    """Token embedding + conditioning -> pre-norm relative-attention blocks -> logits."""

    def __init__(self, config: MusicTransformerConfig):
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(VOCAB_SIZE, config.d_model, padding_idx=PAD)
        self.cond = ConditionEmbedding(config.d_model)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(_Block(config) for _ in range(config.num_layers))
        self.norm = nn.LayerNorm(config.d_model)
        self.out = nn.Linear(config.d_model, VOCAB_SIZE)

    def _input(self, tokens: torch.Tensor, next_cond: torch.Tensor) -> torch.Tensor:
        return self.drop(self.embed(tokens) + self.cond(next_cond))

    def forward(
        self,
        tokens: torch.Tensor,
        next_cond: torch.Tensor,
        padding: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Next-token logits.

        Args:
            tokens: ``(B, L)`` int64 input tokens.
            next_cond: ``(B, L, COND_SIZE)`` int64 conditioning of the token each position
                predicts.
            padding: ``(B, L)`` bool, True at positions no other position may attend to
                (e.g. left padding); such a position still sees itself.

        Returns:
            ``(B, L, VOCAB_SIZE)`` logits.
        """
        length = tokens.shape[1]
        allowed = attention_mask(length, self.config.window, tokens.device)
        if padding is not None:
            eye = torch.eye(length, dtype=torch.bool, device=tokens.device)
            allowed = (allowed & ~padding[:, None, None, :]) | eye
        x = self._input(tokens, next_cond)
        for block in self.blocks:
            x = block(x, allowed)
        return self.out(self.norm(x))

    def decoder(self, batch: int) -> _TransformerDecoder:
        """A step-by-step decoder with a key/value cache (see :mod:`music_generate`)."""
        return _TransformerDecoder(self, batch)


class _TransformerDecoder(StepDecoder):
    """Carries each block's key/value cache and the position from one step to the next."""

    def __init__(self, model: MusicTransformer, batch: int):
        super().__init__(model, batch)
        self.position = 0
        self.caches: list[dict[str, torch.Tensor]] = [{} for _ in model.blocks]

    def _step(self, tokens: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        model = self.model
        x = model._input(tokens, cond)
        for block, cache in zip(model.blocks, self.caches, strict=True):
            x = block.step(x, cache, self.position, model.config.window)
        self.position += 1
        return model.out(model.norm(x))


#: The family's one build / save / load path (:class:`~avtool.models.music.tokens.NeuralFamily`).
FAMILY: NeuralFamily[MusicTransformerConfig, MusicTransformer] = NeuralFamily(
    family="music_transformer",
    format_tag=FORMAT,
    what="music Transformer",
    config_type=MusicTransformerConfig,
    model_type=MusicTransformer,
)
build = FAMILY.build
to_checkpoint = FAMILY.to_checkpoint
load = FAMILY.load
load_entry = FAMILY.load_entry
infer = FAMILY.infer
