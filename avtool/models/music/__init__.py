"""Symbolic music: four-voice chorales as tokens, and three families that model them.

* :mod:`.tokens`: the voice-interleaved token layout (``BOS KEY S0 A0 T0 B0 S1 ...``) with its
  conditioning (beat, fermata, voice state), encode/decode and shared checkpoint helpers;
* :mod:`.markov`, :mod:`.lstm`, :mod:`.transformer`: the families (n-gram back-off, LSTM,
  Transformer with relative attention), each with its config, module and ``load()``;
* :mod:`.generate`: sampling any family (continuation, harmonisation, parallel avoidance);
* :mod:`.options`: run-time sampling options, torch-free so the CLI reads their defaults.

Trainers live in :mod:`avtool.training.music`; the corpus in :mod:`avtool.datasets.chorales`.
This ``__init__`` imports nothing, so ``avtool.models.music.options`` stays light.
"""
