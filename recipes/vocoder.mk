# Train a HiFi-GAN vocoder (avtool.training.hifigan) and vocode with the result.
#
#   make -f recipes/vocoder.mk smoke                      # ~20 debug steps on the CPU, < 1 min
#   make -f recipes/vocoder.mk train DATA=LJSpeech-1.1/wavs OUT=runs/lj-v1 DEVICE=cuda
#
# smoke: trains the tiny `debug` preset (16-channel generator, 8x narrower discriminators) for
#   SMOKE_STEPS steps on DATA (default: the 900 GRID s1 clips), then vocodes the held-out clip
#   (the last file of DATA by path, named in OUT/run.json) with
#   `avtool vocode CLIP --model OUT/g_XXXXXXXX`. The audio is noise-like after 20 steps: this
#   checks the plumbing, not the quality.
#
# train: the paper's recipe (CONFIG v1 by default; v2/v3 are smaller generators, or give an
#   official config.json): batch 16, 8192-sample crops, AdamW 2e-4, full-size MPD + MSD.
#   It is meant for a GPU; on a CPU one full-size step takes tens of seconds.
#   Expected time (estimates from the reference's reports, not measured here): jik876 trained
#   the published LJ_V1 for 2.5M steps in 13-14 days on two V100s; one H100 should do roughly
#   3-4 steps/s, so the default STEPS=100000 is about 7-9 hours and gives clean, if not yet
#   published-quality, LJSpeech; V3 trains ~14% faster (the discriminators dominate).
#   Re-running the target resumes from the newest g_/do_ pair in OUT (--resume); STEPS is the
#   total to reach, so raise it to go on.
#
# LJSpeech: download and unpack LJSpeech-1.1 (13,100 clips, 24 h, 22.05 kHz mono WAV), then
#   make -f recipes/vocoder.mk train DATA=LJSpeech-1.1/wavs OUT=runs/lj-v1 DEVICE=cuda
#   All files but one (held out for the validation mel L1) are trained on; the decoded audio is
#   cached in memory (~7.6 GB as float32). Checkpoints: OUT/g_XXXXXXXX (the generator, for
#   `avtool vocode --model`), OUT/do_XXXXXXXX (the newest two are kept, ~1 GB each for V1),
#   OUT/config.json (official keys: jik876's inference.py reads it too) and
#   OUT/train_log.jsonl (losses and held-out mel L1 every LOG_EVERY steps).
#
# Variables: DATA, OUT, CONFIG (debug|v1|v2|v3|path/to/config.json), STEPS, BATCH (empty: the
#   config's), DEVICE (auto|cpu|cuda), LOG_EVERY, CHECKPOINT_EVERY; smoke also SMOKE_STEPS and
#   THREADS (CPU threads; 1 keeps the tiny model fast on a busy machine).
PYTHON ?= .venv/bin/python
AVTOOL ?= .venv/bin/avtool
DATA ?= ../shared/data/grid_s1/clips
OUT ?= out/vocoder
CONFIG ?= v1
STEPS ?= 100000
BATCH ?=
DEVICE ?= auto
LOG_EVERY ?= 100
CHECKPOINT_EVERY ?= 5000
SMOKE_STEPS ?= 20
THREADS ?= 1

TRAIN = $(PYTHON) -m avtool.training.hifigan --data $(DATA) --out $(OUT) --config $(CONFIG) \
	--device $(DEVICE) $(if $(BATCH),--batch-size $(BATCH)) --resume

.PHONY: smoke train

smoke:
	OMP_NUM_THREADS=$(THREADS) $(TRAIN) --steps $(SMOKE_STEPS) --log-every 5 \
		--checkpoint-every $(SMOKE_STEPS)
	clip=$$($(PYTHON) -c 'import json,sys; print(json.load(open(sys.argv[1]))["heldout"][0])' \
		$(OUT)/run.json) && \
	OMP_NUM_THREADS=$(THREADS) AVTOOL_OFFLINE=1 $(AVTOOL) --device $(DEVICE) vocode "$$clip" \
		--model $(OUT)/g_$(shell printf '%08d' $(SMOKE_STEPS)) -o $(OUT)/heldout.wav --overwrite
	@echo "wrote $(OUT)/heldout.wav (log: $(OUT)/train_log.jsonl)"

# The smoke run's own defaults; command-line values still win.
smoke: CONFIG = debug
smoke: OUT = out/vocoder-smoke

train:
	$(TRAIN) --steps $(STEPS) --log-every $(LOG_EVERY) --checkpoint-every $(CHECKPOINT_EVERY)
	@echo "generator: $(OUT)/g_$(shell printf '%08d' $(STEPS)) (config.json beside it)"
