"""The speaker-domain decision: nearest-neighbour distance, median over faces, threshold."""

from __future__ import annotations

import numpy as np
import pytest

from avtool.errors import InputError, ModelError
from avtool.models import face_identity
from avtool.models.face_identity import IdentityReference, distances, match, sample_indices


def _reference(threshold: float = 0.6) -> IdentityReference:
    descriptors = np.zeros((3, 128), np.float32)
    descriptors[0, 0] = 1.0  # three training faces: at e0, e1 and the origin
    descriptors[1, 1] = 1.0
    return IdentityReference(("GRID s1",), descriptors, threshold, ("a", "b", "c"), "test")


def test_distance_is_to_the_nearest_training_face():
    query = np.zeros((2, 128), np.float32)
    query[0, 0] = 0.9  # 0.1 from e0
    query[1, 2] = 2.0  # 2.0 from the origin, farther from the others
    assert distances(_reference(), query) == pytest.approx([0.1, 2.0], abs=1e-6)


def test_decision_uses_the_median_over_faces_and_the_threshold():
    near, far = np.zeros(128, np.float32), np.zeros(128, np.float32)
    near[5], far[5] = 0.3, 0.9
    # One badly aligned frame (far) among near ones does not make a stranger.
    same = match(_reference(), np.stack([near, near, far]))
    assert same.same and same.distance == pytest.approx(0.3, abs=1e-6) and same.faces == 3
    other = match(_reference(), np.stack([far, far, near]))
    assert not other.same and other.distance == pytest.approx(0.9, abs=1e-6)
    # The threshold decides; the record is JSON-ready.
    assert not match(_reference(0.25), near[None]).same
    record = match(_reference(0.35), near[None]).to_dict()
    assert record["same_speaker"] and record["training_speakers"] == ["GRID s1"]


def test_reference_round_trips_through_npz_without_pickles(tmp_path):
    reference = _reference(0.55)
    path = tmp_path / "identity.npz"
    np.savez(path, **reference.to_arrays())
    with np.load(path, allow_pickle=False) as arrays:
        back = IdentityReference.from_arrays(dict(arrays))
    assert back.speakers == ("GRID s1",) and back.threshold == 0.55
    assert back.clip_ids == ("a", "b", "c") and back.note == "test"
    np.testing.assert_array_equal(back.descriptors, reference.descriptors)


def test_bad_references_and_queries_are_refused():
    with pytest.raises(ModelError):
        IdentityReference(("s1",), np.zeros((0, 128)), 0.6)
    with pytest.raises(ModelError):
        IdentityReference((), np.zeros((1, 128)), 0.6)
    with pytest.raises(ModelError):
        IdentityReference(("s1",), np.zeros((1, 128)), 0.0)
    with pytest.raises(ModelError):
        IdentityReference.from_arrays({"speakers": np.array(["s1"])})
    with pytest.raises(InputError):
        distances(_reference(), np.zeros((2, 64)))
    with pytest.raises(InputError):
        face_identity.infer(None, np.zeros((4, 4), np.uint8), np.zeros((68, 2)))


def test_sample_indices_spread_over_detected_frames_within_the_span():
    usable = np.ones(400, bool)
    usable[:10] = False
    picks = sample_indices(usable, 5, 250)
    assert len(picks) == 5 and picks[0] == 10 and picks[-1] == 249
    assert sample_indices(np.array([False, True, False]), 5, 250) == [1]
    assert sample_indices(np.zeros(3, bool), 5, 250) == []
