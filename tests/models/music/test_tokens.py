"""The chorale token stream: layout, fixed vocabulary, round trips and errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from avtool.datasets.chorales import HOLD, REST, VOICE_RANGES, Chorale
from avtool.errors import InputError
from avtool.models.music import tokens as mt


def make_chorale(steps: int = 32, shift: int = 0) -> Chorale:
    """A tiny 4/4 chorale: quarter notes moving by step, a held note and a rest."""
    voices = np.full((4, steps), HOLD, dtype=np.int16)
    base = np.array([72, 67, 60, 48]) + shift
    for onset in range(0, steps, 4):
        voices[:, onset] = base + (onset // 4) % 3
    voices[3, 8:12] = REST
    beat = (np.arange(steps) % 16).astype(np.int8)
    fermata = (beat >= 8) & (beat < 12) & ((np.arange(steps) // 16) % 2 == 1)
    return Chorale("synthetic", voices, fermata, beat, (0 + shift) % 12, "major", "4/4")


def test_vocabulary_is_fixed_and_named():
    names = mt.vocabulary()
    assert mt.VOCAB_SIZE == 98 == len(names) == len(set(names))
    assert names[mt.PAD] == "PAD" and names[mt.HOLD_TOKEN] == "HOLD"
    assert names[mt.PITCH_BASE] == "E1" and names[mt.KEY_BASE - 1] == "C7"
    assert names[mt.key_token(7, "major")] == "key:G major"
    assert list(mt.VOICE_TOKENS) == list(range(mt.REST_TOKEN, mt.KEY_BASE))


def test_encode_layout_and_round_trip():
    chorale = make_chorale()
    tokens, cond = mt.encode(chorale)
    steps = chorale.voices.shape[1]
    assert tokens.shape == (mt.PREFIX_LENGTH + 4 * steps + 1,)
    assert cond.shape == (tokens.size, mt.COND_SIZE)
    assert tokens[0] == mt.BOS and tokens[-1] == mt.EOS
    assert mt.key_from_token(int(tokens[1])) == (0, "major")
    # Step t occupies positions 2 + 4t .. 2 + 4t + 3 in the order S, A, T, B.
    first_step = tokens[2:6]
    assert list(mt.token_values(first_step)) == list(chorale.voices[:, 0])
    assert list(cond[2:6, mt.COND_VOICE]) == [0, 1, 2, 3]
    assert cond[0, mt.COND_VOICE] == cond[-1, mt.COND_VOICE] == mt.NO_VOICE
    assert cond[1, mt.COND_BEAT] == mt.NO_BEAT
    positions = mt.step_positions(steps)
    assert np.array_equal(cond[positions[:, 0], mt.COND_BEAT], chorale.beat)
    assert np.array_equal(cond[positions[:, 2], mt.COND_FERMATA].astype(bool), chorale.fermata)
    assert np.array_equal(mt.decode(tokens), chorale.voices)
    assert mt.decode(tokens).dtype == np.int16
    # Bare step tokens and a prompt without EOS decode the same way.
    assert np.array_equal(mt.decode(mt.encode_voices(chorale.voices)), chorale.voices)
    prompt, _ = mt.encode(chorale, eos=False)
    assert np.array_equal(mt.decode(prompt), chorale.voices)


def test_keys_round_trip():
    for tonic in range(12):
        for mode in ("major", "minor"):
            assert mt.key_from_token(mt.key_token(tonic, mode)) == (tonic, mode)
    with pytest.raises(InputError):
        mt.key_token(0, "dorian")
    with pytest.raises(InputError):
        mt.key_from_token(mt.HOLD_TOKEN)


def test_values_without_tokens_are_refused():
    with pytest.raises(InputError, match=r"MIDI 28\.\.96"):
        mt.pitch_tokens([100])
    with pytest.raises(InputError, match="not a voice token"):
        mt.token_values([mt.BOS])
    with pytest.raises(InputError, match="whole number"):
        mt.decode([mt.BOS, mt.key_token(0, "major"), 10, 10, 10])
    with pytest.raises(InputError, match="shape"):
        mt.encode_voices(np.zeros((3, 4)))
    with pytest.raises(InputError, match="beat"):
        mt.condition(np.full(4, mt.REST_TOKEN), np.array([30]), np.array([False]))
    with pytest.raises(InputError, match="steps"):
        mt.condition(np.full(8, mt.REST_TOKEN), np.array([0]), np.array([False]))


def test_voice_masks_follow_the_ranges():
    masks = mt.voice_masks()
    for row, (low, high) in enumerate(VOICE_RANGES.values()):
        allowed = mt.token_values(np.flatnonzero(masks[row][mt.PITCH_BASE : mt.KEY_BASE]) + 5)
        assert allowed.min() == low and allowed.max() == high
        assert masks[row, mt.HOLD_TOKEN] and masks[row, mt.REST_TOKEN]
        assert not masks[row, [mt.PAD, mt.BOS, mt.EOS]].any()
        assert not masks[row, mt.KEY_BASE :].any()


def test_time_signatures():
    assert mt.parse_time_signature("4/4") == 16
    assert mt.parse_time_signature("3/4") == 12
    assert mt.parse_time_signature("3/2") == 24
    for bad in ("4", "x/4", "5/2", "1/32"):
        with pytest.raises(InputError):
            mt.parse_time_signature(bad)


def test_voice_state_columns():
    chorale = make_chorale(12)
    tokens, cond = mt.encode(chorale)
    sounding = slice(mt.COND_SOUNDING, mt.COND_PREVIOUS)
    # First step: nothing sounds yet, except the voices above in this step.
    assert (cond[2, sounding] == mt.PAD).all() and cond[2, mt.COND_PREVIOUS] == mt.PAD
    assert list(cond[4, sounding]) == [tokens[2], tokens[3], mt.PAD, mt.PAD]
    # Step 1 (all HOLD): every voice still sounds its step-0 pitch.
    s1_bass = 2 + 4 * 1 + 3
    assert list(cond[s1_bass, sounding]) == list(tokens[2:6])
    assert cond[s1_bass, mt.COND_PREVIOUS] == tokens[5]
    # Step 9: the bass rests from step 8 (REST, not its old pitch).
    s9_bass = 2 + 4 * 9 + 3
    assert cond[s9_bass, mt.COND_SOUNDING + 3] == mt.REST_TOKEN
    assert cond[s9_bass, mt.COND_PREVIOUS] == mt.REST_TOKEN
    # The incremental tracker used while sampling gives the same rows.
    state = mt.VoiceState(1)
    for position in range(2, tokens.size - 1):
        voice = (position - 2) % 4
        assert state.columns(voice)[0].tolist() == cond[position, mt.COND_SOUNDING :].tolist()
        state.update(voice, torch.tensor([tokens[position]]))
    assert state.can_hold(0).item() and not state.can_hold(3).item()  # the bass rests
