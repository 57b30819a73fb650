# Train the symbolic music models (avtool.training.music) on music21's Bach chorales and
# score them on the held-out chorales.
#
#   make -f recipes/music.mk train       # Markov + LSTM + Transformer, ~12 min on 2 CPU cores
#   make -f recipes/music.mk eval        # OUT/eval.json: test NLL of every model, same split,
#                                        # same run, + statistics of sampled pieces
#   make -f recipes/music.mk smoke       # debug presets, a few updates each, < 1 min
#
# data: parses the corpus once into the chorale cache (a few minutes the first time, then
#   under a second), so the parallel training jobs below never parse it concurrently.
# train: the Markov baseline (seconds), then the LSTM and the Transformer side by side, one
#   CPU thread each (per-token work is small: two single-threaded jobs beat one two-threaded
#   job on 2 cores). Each neural run stops early when the valid NLL stops improving, or after
#   its MINUTES; the best-on-valid weights are kept. Outputs in OUT: music_markov.npz,
#   music_lstm.pt, music_transformer.pt and a music_<family>.train.json each (curve, configs,
#   valid and test NLL).
# GPU: DEVICE=cuda THREADS=4 LSTM_MINUTES=60 TRANSFORMER_MINUTES=60 trains much further;
#   the same commands, the same split.
#
# Variables: OUT, SEED, DEVICE (cpu|cuda), THREADS (per job), PRESET (small|debug),
#   LSTM_MINUTES, TRANSFORMER_MINUTES, PIECES (sampled per model by eval), CACHE (chorale
#   cache folder; empty: avtool's cache).
PYTHON ?= .venv/bin/python
OUT ?= weights-music
SEED ?= 0
DEVICE ?= cpu
THREADS ?= 1
PRESET ?= small
LSTM_MINUTES ?= 11
TRANSFORMER_MINUTES ?= 11
PIECES ?= 20
CACHE ?=

CACHE_ARG = $(if $(CACHE),--cache $(CACHE))
TRAIN = OMP_NUM_THREADS=$(THREADS) $(PYTHON) -m avtool.training.music --out $(OUT) \
	--seed $(SEED) --device $(DEVICE) --threads $(THREADS) --preset $(PRESET) $(CACHE_ARG)

.PHONY: data train markov lstm transformer eval smoke

data:
	$(PYTHON) -c 'import sys; from pathlib import Path; from avtool.datasets.chorales import load_chorales; \
		print(len(load_chorales(Path(sys.argv[1]) if sys.argv[1:] else None, progress=True)), "chorales")' $(CACHE)

train: data
	$(TRAIN) --family markov
	$(MAKE) -f recipes/music.mk -j2 lstm transformer

markov:
	$(TRAIN) --family markov

lstm:
	$(TRAIN) --family lstm --minutes $(LSTM_MINUTES)

transformer:
	$(TRAIN) --family transformer --minutes $(TRANSFORMER_MINUTES)

eval:
	OMP_NUM_THREADS=$(THREADS) $(PYTHON) -m avtool.training.music --eval --out $(OUT) \
		--pieces $(PIECES) --seed $(SEED) --threads $(THREADS) $(CACHE_ARG)

smoke: data
	$(MAKE) -f recipes/music.mk train eval OUT=out/music-smoke PRESET=debug \
		LSTM_MINUTES=0.2 TRANSFORMER_MINUTES=0.2 PIECES=2
