"""Symbolic music families (Markov, LSTM, Transformer), sampling and the training loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from avtool.datasets.chorales import HOLD, REST, VOICE_RANGES, VOICES
from avtool.errors import InputError, ModelError
from avtool.models.music import lstm as music_lstm
from avtool.models.music import markov as music_markov
from avtool.models.music import tokens as mt
from avtool.models.music import transformer as music_transformer
from avtool.models.music.generate import (
    Score,
    generate,
    generate_batch,
    load_model,
    phrase_fermatas,
)
from avtool.models.music.options import SamplingOptions
from tests.models.music.test_tokens import make_chorale

torch.set_num_threads(1)


def neural(family: str) -> torch.nn.Module:
    torch.manual_seed(0)
    if family == "lstm":
        return music_lstm.build(music_lstm.MusicLSTMConfig.debug()).eval()
    return music_transformer.build(music_transformer.MusicTransformerConfig.debug()).eval()


@pytest.fixture(scope="module")
def markov() -> music_markov.MarkovModel:
    pieces = [mt.encode(make_chorale(48, shift)) for shift in range(-3, 4)]
    return music_markov.fit(pieces, music_markov.MarkovConfig.debug())


def batch_of(chorale, count: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    tokens, cond = mt.encode(chorale)
    return (
        torch.from_numpy(tokens).repeat(count, 1),
        torch.from_numpy(cond).repeat(count, 1, 1),
    )


# --------------------------------------------------------------------------- neural families


@pytest.mark.parametrize("family", ["lstm", "transformer"])
def test_forward_shapes(family):
    model = neural(family)
    tokens, cond = batch_of(make_chorale(20), count=3)
    out = model(tokens[:, :-1], cond[:, 1:])
    logits = out[0] if isinstance(out, tuple) else out
    assert logits.shape == (3, tokens.shape[1] - 1, mt.VOCAB_SIZE)
    logp = model.log_probs(tokens[0].numpy(), cond[0].numpy())
    assert logp.shape == (tokens.shape[1],) and np.isnan(logp[0])
    assert np.all(logp[1:] <= 0) and np.isfinite(logp[1:]).all()


@pytest.mark.parametrize("family", ["lstm", "transformer"])
def test_debug_model_overfits_a_chorale(family):
    model = neural(family).train()
    tokens, cond = batch_of(make_chorale(24), count=4)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(40):
        out = model(tokens[:, :-1], cond[:, 1:])
        logits = out[0] if isinstance(out, tuple) else out
        loss = F.cross_entropy(logits.reshape(-1, mt.VOCAB_SIZE), tokens[:, 1:].reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


@pytest.mark.parametrize("family", ["lstm", "transformer"])
def test_step_decoder_matches_full_forward(family):
    model = neural(family)
    # 40 steps = 162 tokens: far longer than the debug Transformer's 16-token window.
    tokens, cond = mt.encode(make_chorale(40))
    expected = model.log_probs(tokens, cond)
    decoder = model.decoder(1)
    got = []
    for position in range(1, tokens.size):
        logits = decoder.feed(torch.tensor([tokens[position - 1]]), torch.tensor(cond[[position]]))
        got.append(torch.log_softmax(logits, -1)[0, tokens[position]].item())
    np.testing.assert_allclose(got, expected[1:], atol=1e-4)


def test_relative_logits_skew_matches_direct_gather():
    torch.manual_seed(0)
    q = torch.randn(2, 3, 9, 4)
    table = torch.randn(3, 5, 4)  # distances 0..4; longer ones clip to 4
    skewed = music_transformer.relative_logits(q, table)
    for i in range(9):
        for j in range(i + 1):
            direct = (q[:, :, i] * table[:, min(i - j, 4)]).sum(-1)
            torch.testing.assert_close(skewed[:, :, i, j], direct)


def test_relative_attention_is_shift_equivariant():
    """Padding in front (masked) shifts every output by the same number of positions."""
    model = neural("transformer")
    tokens, cond = batch_of(make_chorale(3), count=1)
    inputs, next_cond = tokens[:, :-1], cond[:, 1:]
    plain = model(inputs, next_cond)
    shift = 5
    padded_tokens = torch.cat([torch.full((1, shift), mt.PAD), inputs], dim=1)
    padded_cond = torch.cat([next_cond[:, :1].repeat(1, shift, 1), next_cond], dim=1)
    padding = torch.zeros(padded_tokens.shape, dtype=torch.bool)
    padding[:, :shift] = True
    shifted = model(padded_tokens, padded_cond, padding=padding)
    torch.testing.assert_close(shifted[:, shift:], plain, atol=1e-5, rtol=1e-5)
    # Absolute-position models would fail this; the window must not see the padding either.
    assert inputs.shape[1] < model.config.window


@pytest.mark.parametrize("family", ["lstm", "transformer"])
def test_checkpoint_round_trip(tmp_path, family):
    module = music_lstm if family == "lstm" else music_transformer
    model = neural(family)
    path = tmp_path / "model.pt"
    torch.save(module.to_checkpoint(model), path)
    loaded = load_model(path)
    assert type(loaded) is type(model) and loaded.config == model.config
    tokens, cond = mt.encode(make_chorale(8))
    np.testing.assert_allclose(loaded.log_probs(tokens, cond), model.log_probs(tokens, cond))
    data = module.to_checkpoint(model)
    data["vocab"] = data["vocab"][:-1]
    with pytest.raises(ModelError, match="vocabulary"):
        module.load(data)
    other = music_transformer if family == "lstm" else music_lstm
    with pytest.raises(ModelError, match="format"):
        other.load(module.to_checkpoint(model))


# --------------------------------------------------------------------------- Markov


def test_markov_nll_is_finite_on_unseen_music(markov, tmp_path):
    # Another key and rhythm than the training pieces, with pitches never seen there.
    unseen = make_chorale(64, shift=9)
    voices = unseen.voices.copy()
    voices[0, 4] = 81
    tokens, cond = mt.sequence(voices, unseen.beat, unseen.fermata, 2, "minor")
    logp = markov.log_probs(tokens, cond)
    scored = cond[:, mt.COND_VOICE] != mt.NO_VOICE
    assert np.isfinite(logp[scored]).all() and np.all(logp[scored] < 0)
    assert np.isnan(logp[~scored]).all()
    # Seen music is likelier than unseen music.
    seen = markov.log_probs(*mt.encode(make_chorale(48)))
    assert np.nanmean(seen) > np.nanmean(logp)
    path = music_markov.save(markov, tmp_path / "m.npz")
    reloaded = load_model(path)
    assert isinstance(reloaded, music_markov.MarkovModel)
    np.testing.assert_allclose(reloaded.log_probs(tokens, cond), logp)


def test_markov_probabilities_sum_to_one(markov):
    features = {name: np.array([mt.BOS]) for name in ("s", "h1")}
    features["m"] = np.array([0])
    candidates = np.arange(mt.REST_TOKEN, mt.KEY_BASE)[None]
    assert markov._probabilities(0, features, candidates).sum() == pytest.approx(1.0)


def test_markov_decoder_matches_log_probs(markov):
    tokens, cond = mt.encode(make_chorale(20, shift=1))
    expected = markov.log_probs(tokens, cond)
    decoder = markov.decoder(1)
    for position in range(1, tokens.size):
        logits = decoder.feed(torch.tensor([tokens[position - 1]]), torch.tensor(cond[[position]]))
        if not np.isnan(expected[position]):
            got = torch.log_softmax(logits, -1)[0, tokens[position]].item()
            assert got == pytest.approx(expected[position], abs=1e-5)


# --------------------------------------------------------------------------- sampling


def models_for_sampling(markov):
    return {"markov": markov, "lstm": neural("lstm"), "transformer": neural("transformer")}


@pytest.mark.parametrize("family", ["markov", "lstm", "transformer"])
def test_generate_respects_ranges_and_holds(markov, family):
    model = models_for_sampling(markov)[family]
    pieces = generate_batch(model, 2, Score(7, "major", 48), SamplingOptions(seed=1))
    assert pieces.shape == (2, 4, 48) and pieces.dtype == np.int16
    for voices in pieces:
        for row, name in enumerate(VOICES):
            low, high = VOICE_RANGES[name]
            pitches = voices[row][voices[row] >= 0]
            assert pitches.size == 0 or (pitches.min() >= low and pitches.max() <= high)
            previous = np.concatenate([[REST], voices[row, :-1]])
            assert not np.any((voices[row] == HOLD) & (previous == REST))


@pytest.mark.parametrize("family", ["markov", "lstm", "transformer"])
def test_prompt_and_soprano_are_kept_verbatim(markov, family):
    model = models_for_sampling(markov)[family]
    prompt = make_chorale(12).voices
    out = generate(model, Score(0, "major", 20, prompt_voices=prompt), SamplingOptions(seed=2))
    assert out.shape == (4, 32)
    assert np.array_equal(out[:, :12], prompt)
    soprano = make_chorale(24, shift=2).voices[0]
    out = generate(model, Score(2, "major", fixed_soprano=soprano), SamplingOptions(seed=3))
    assert out.shape == (4, 24) and np.array_equal(out[0], soprano)
    both = generate(
        model,
        Score(0, "major", prompt_voices=prompt, fixed_soprano=soprano),
        SamplingOptions(seed=4),
    )
    assert np.array_equal(both[:, :12], prompt) and np.array_equal(both[0, 12:], soprano)


def test_generate_is_deterministic_by_seed():
    model = neural("transformer")
    score = Score(9, "minor", 16)

    def sample(seed: int, **sampling) -> np.ndarray:
        return generate(
            model, score, SamplingOptions(seed=seed, **{"temperature": 1.5, **sampling})
        )

    first = sample(5)
    assert np.array_equal(first, sample(5))
    assert not np.array_equal(first, sample(6))
    batch = generate_batch(model, 3, score, SamplingOptions(seed=5, temperature=1.5))
    assert np.array_equal(batch[0], first)
    greedy = sample(1, temperature=0.0)
    assert np.array_equal(greedy, sample(2, temperature=0.0))
    top1 = sample(1, top_k=1)
    assert np.array_equal(top1, greedy)


def test_generate_refuses_bad_arguments(markov):
    with pytest.raises(InputError):
        generate(markov, Score(0, "major"))  # no length
    with pytest.raises(InputError):
        generate(markov, Score(0, "major", 4, fixed_soprano=[72, HOLD]))
    with pytest.raises(InputError):
        generate(markov, Score(0, "major", 4, prompt_voices=np.zeros((3, 2))))
    with pytest.raises(InputError):
        generate(markov, Score(0, "major", 4), SamplingOptions(time_signature="7/1"))


def test_phrase_fermatas_follow_the_chorale_norm():
    fermata = phrase_fermatas(16 * 16, 16)
    bars = fermata.reshape(16, 16)
    assert not bars[0].any()
    assert np.flatnonzero(bars[1]).tolist() == [8, 9, 10, 11]
    assert np.flatnonzero(bars[15]).tolist() == list(range(8, 16))
    assert bars.any(axis=1).sum() == 8
    # With a one-quarter pickup the first full bar is bar 0 of the phrase count.
    pickup = phrase_fermatas(4 + 48, 16, start_beat=12)
    assert np.flatnonzero(pickup).tolist() == [*range(28, 32), *range(44, 52)]
    three_four = phrase_fermatas(12 * 4, 12)
    assert np.flatnonzero(three_four).tolist() == list(range(36, 48))


# --------------------------------------------------------------------------- training loop


def test_training_loop_writes_loadable_checkpoints(tmp_path):
    from avtool.training.music import TrainConfig, score, train

    pieces = [mt.encode(make_chorale(40, shift)) for shift in range(-2, 3)]
    data = {
        "train": pieces,
        "valid": pieces[:1],
        "test": pieces[1:2],
        "names": {"train": ["a"], "valid": ["b"], "test": ["c"]},
    }
    for family in ("markov", "lstm", "transformer"):
        config = TrainConfig(family=family, preset="debug", max_steps=4, eval_every=2)
        record = train(config, tmp_path, data=data)
        assert np.isfinite(record["test"]["nll"]) and record["test"]["tokens"] == 160
        model = load_model(tmp_path / f"music_{family}.{'npz' if family == 'markov' else 'pt'}")
        assert score(model, data["test"])["nll"] == pytest.approx(record["test"]["nll"])
        assert (tmp_path / f"music_{family}.train.json").is_file()
    assert len(record["curve"]) == 2


class _Recorder:
    """A model whose decoder records the conditioning rows it is fed (uniform logits)."""

    def __init__(self):
        self.rows: list[torch.Tensor] = []

    def decoder(self, batch: int):
        recorder = self

        class Decoder:
            def feed(self, tokens, cond):
                recorder.rows.append(cond[0].clone())
                return torch.zeros(batch, mt.VOCAB_SIZE)

        return Decoder()


def test_sampling_conditioning_matches_encoding():
    """What a model is fed while sampling is what encode() gives for the finished piece."""
    recorder = _Recorder()
    prompt = make_chorale(8).voices
    voices = generate(recorder, Score(4, "minor", 24, prompt_voices=prompt))
    beat = np.arange(32) % 16
    _, cond = mt.sequence(voices, beat, phrase_fermatas(32, 16), 4, "minor", eos=False)
    np.testing.assert_array_equal(torch.stack(recorder.rows).numpy(), cond[1:])


class _Doubler:
    """A model that doubles the soprano an octave (alto, tenor) or two (bass) below."""

    def decoder(self, batch: int):
        class Decoder:
            def feed(self, tokens, cond):
                logits = torch.zeros(batch, mt.VOCAB_SIZE)
                soprano = cond[:, mt.COND_SOUNDING]
                octaves = torch.where(cond[:, mt.COND_VOICE] == 3, 24, 12)
                target = soprano - octaves
                rows = torch.nonzero(soprano >= mt.PITCH_BASE + 24)[:, 0]
                logits[rows, target[rows]] = 10.0
                return logits

        return Decoder()


def test_avoid_parallels_masks_parallel_fifths_and_octaves():
    from avtool.metrics.music import parallel_motion

    soprano = np.full(32, HOLD)
    soprano[::4] = [72, 74, 76, 77, 79, 77, 76, 74]
    plain = generate(_Doubler(), Score(0, "major", fixed_soprano=soprano))
    assert parallel_motion(plain)[1] > 10  # octaves everywhere
    score = Score(0, "major", fixed_soprano=soprano)
    clean = generate(_Doubler(), score, SamplingOptions(avoid_parallels=True))
    assert parallel_motion(clean) == (0, 0)
    assert np.array_equal(clean[0], soprano)
