"""Options of ``avtool music`` (beyond sampling, :mod:`avtool.models.music.options`) and their
ranges: the CLI builds its flags from these, and :mod:`avtool.tasks.music` runs them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from avtool.errors import InputError
from avtool.models.music.options import SamplingOptions

DEFAULT_MODEL = "music-transformer-chorales"
MAX_BARS = 256
"""The longest piece ``--bars`` asks for: 11 minutes of music at the default 90 quarter notes
per minute in 4/4, ten times the longest Bach chorale. Composing costs the same per bar however
long the piece (the Transformer attends 4 bars back through a key/value cache): 0.26 CPU s a
bar on the shared 2-core test machine, so the worst case is about a minute of one core per piece
(``benchmarks/bench_music_length.py``; docs/music.md)."""
PROGRESS_MIN_BARS = 16
"""Pieces x bars from which composing shows a progress bar on stderr (unless ``--quiet``)."""
SAMPLE_RATE_RANGE = (8000, 192_000)
"""``--sample-rate`` of the rendered audio, in Hz."""


@dataclass(frozen=True)
class MusicOptions:
    """Options of ``avtool music`` beyond sampling; the CLI reads its defaults from here.

    Attributes:
        model: registry name or checkpoint path (Markov ``.npz``, LSTM/Transformer ``.pt``).
        count: pieces to sample (piece i uses seed + i).
        tempo: quarter notes per minute in the MIDI and audio.
        instrument: General MIDI instrument name for all four voices.
        sample_rate: audio rate in Hz.
        key_given: False when ``sampling.key`` is the default and may be estimated from a
            prompt or melody instead.
        tempo_given: False when ``tempo`` is the default: a ``--harmonize`` MIDI file's own
            tempo is then used.
        sampling: bars, key, metre, temperature, top-k, seed.
    """

    model: str = DEFAULT_MODEL
    count: int = 1
    tempo: float = 90.0
    instrument: str = "organ"
    sample_rate: int = 44100
    key_given: bool = False
    tempo_given: bool = False
    sampling: SamplingOptions = field(default_factory=SamplingOptions)

    def validated(self) -> MusicOptions:
        """Self after range checks.

        Raises:
            InputError: zero bars, bad tempo/count/temperature/top-k, unknown key string.
        """
        # The key parser's module pulls numpy; options stay light for the CLI's start.
        from avtool.datasets.chorales import parse_key

        s = self.sampling
        if not 1 <= s.bars <= MAX_BARS:
            raise InputError(
                f"--bars {s.bars}: must be 1..{MAX_BARS} ({MAX_BARS} bars is 11 minutes at 90 "
                "quarter notes per minute; longer pieces only wander)"
            )
        low, high = SAMPLE_RATE_RANGE
        if not low <= self.sample_rate <= high:
            raise InputError(f"--sample-rate {self.sample_rate}: must be {low}..{high} Hz")
        if not 20 <= self.tempo <= 400:
            raise InputError(f"--tempo {self.tempo}: must be 20..400 quarter notes per minute")
        if not 1 <= self.count <= 10000:
            raise InputError(f"--count {self.count}: must be 1..10000")
        if s.temperature < 0 or s.top_k < 0 or s.seed < 0:
            raise InputError("--temperature, --top-k and --seed must be >= 0")
        parse_key(s.key)
        return self
