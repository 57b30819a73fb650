"""Phonemes to visemes: classes, coarticulation, loudness gating."""

from __future__ import annotations

import numpy as np

from avtool.models.facewarp.visemes import (
    CLOSE,
    OPEN,
    ROUND,
    WIDTH,
    Phone,
    apply_energy,
    expand_phones,
    lead_in,
    speech_envelope,
    viseme_class,
    viseme_track,
)


def test_classes_cover_ipa_and_arpabet():
    assert viseme_class("p") == viseme_class("M") == "bilabial"
    assert viseme_class("ɑ") == viseme_class("AA") == "aa"
    assert viseme_class("uː") == "uw"  # the length mark is not a phone
    assert viseme_class("AY") == ("aa", "ih")
    assert viseme_class("sil") == viseme_class("+NOISE+") == "rest"


def test_modifiers_extend_the_previous_phone():
    segments = expand_phones([Phone("ˈ", 0.0, 0.05), Phone("a", 0.05, 0.2), Phone("ː", 0.2, 0.3)])
    assert len(segments) == 1
    _, start, end = segments[0]
    assert (start, end) == (0.0, 0.3)


def test_open_vowel_opens_and_bilabial_closes_between_vowels():
    phones = [Phone("AA", 0.0, 0.2), Phone("M", 0.2, 0.28), Phone("AA", 0.28, 0.5)]
    track = viseme_track(phones, n_frames=50, fps=100.0)
    assert track.shape == (50, 4) and track.dtype == np.float32
    assert track[10, OPEN] > 0.8  # middle of the first vowel
    closure = track[20:28]
    assert np.all(closure[:, CLOSE] == 1.0)  # the lips meet over the whole m
    assert track[10, CLOSE] == 0.0 and track[40, CLOSE] == 0.0  # and open on the vowels


def test_short_closure_between_vowels_closes_its_nearest_frame_fully():
    # A 20 ms "b" between two open vowels, shorter than a 25 fps frame, centred off-frame.
    phones = [Phone("AA", 0.0, 0.25), Phone("B", 0.25, 0.27), Phone("AE", 0.27, 0.5)]
    track = viseme_track(phones, n_frames=13, fps=25.0)
    nearest = round(0.26 * 25.0)
    assert track[nearest, CLOSE] == 1.0
    assert track[nearest - 2, CLOSE] < 1e-6 and track[nearest + 2, CLOSE] < 1e-6  # brief
    assert track[3, OPEN] > 0.6 and track[10, OPEN] > 0.5


def test_speech_envelope_bridges_short_gaps_and_rests_in_pauses():
    phones = [
        Phone("AA", 0.2, 0.4),
        Phone("sil", 0.4, 0.5),  # 100 ms: a stop closure, inside the run
        Phone("IY", 0.5, 0.7),
        Phone("sil", 0.7, 1.5),  # 800 ms: a pause
        Phone("UW", 1.5, 1.7),
    ]
    env = speech_envelope(phones, 50, 25.0)
    assert env[0] == 0.0 and env[8] == 1.0 and env[11] == 1.0  # 0.44 s: bridged
    assert np.all(env[25:33] == 0.0)  # the pause
    assert 0.0 < env[4] < 1.0  # rises over the 0.1 s before speech
    posture = viseme_track(phones, 50, 25.0)[:, OPEN]
    assert posture[11] >= 0.3 - 1e-6 and posture[28] < 1e-3


def test_lead_in_keeps_the_photo_until_speech_starts():
    phones = [Phone("sil", 0.0, 0.5), Phone("AA", 0.5, 0.8), Phone("sil", 0.8, 2.0)]
    hold = lead_in(phones, 50, 25.0)
    assert np.all(hold[:9] == 1.0) and np.all(hold[13:] == 0.0)
    assert np.all(np.diff(hold) <= 0.0)  # leaves the photo once, never returns
    assert np.all(lead_in([], 10, 25.0) == 1.0)


def test_coarticulation_anticipates_rounding():
    # "s" before "uw" is rounded by anticipation; before "iy" it is spread.
    soon = viseme_track([Phone("S", 0.0, 0.1), Phone("UW", 0.1, 0.3)], 30, 100.0)
    see = viseme_track([Phone("S", 0.0, 0.1), Phone("IY", 0.1, 0.3)], 30, 100.0)
    assert soon[8, ROUND] > see[8, ROUND] + 0.1
    assert see[8, WIDTH] > soon[8, WIDTH]


def test_silence_far_from_phones_is_a_closed_rest():
    track = viseme_track([Phone("AA", 0.0, 0.2)], n_frames=100, fps=100.0)
    assert np.allclose(track[80:], 0.0, atol=1e-3)
    assert viseme_track([], 10, 25.0).max() == 0.0


def test_energy_gates_and_scales_the_opening():
    track = np.tile(np.float32([1.0, 0.5, 0.5, 0.0]), (20, 1))
    loud = np.full(20, 1.0, np.float32)
    voiced = np.ones(20, bool)
    voiced[10:] = False
    out = apply_energy(track, loud, voiced)
    assert out[3, OPEN] > 0.95
    assert out[15, OPEN] == 0.0  # silence: mouth closed
    quiet = apply_energy(track, np.full(20, 0.1, np.float32), np.ones(20, bool))
    assert 0.3 < quiet[5, OPEN] < out[3, OPEN]
