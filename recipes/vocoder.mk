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
# finetune-s1: the published HiFi-GAN V1 universal generator fine-tuned on GRID speaker s1's
#   TRAINING split only (avtool/datasets/grid_s1_split.json: 761 clips; the first validation
#   clip is held out for the log's mel L1; the test split, s4 and the non-s1 grid clips are
#   never read), on the CPU for a bounded time: --init hifigan-v1-universal, fresh
#   discriminators FT_DIVISOR x narrower (no published do_ file ships), batch FT_BATCH of 8192
#   samples, AdamW FT_LR, at most FT_MINUTES of wall clock on THREADS (the run stops and
#   checkpoints there; the step reached is in FT_OUT/train_log.jsonl, and FT_STEPS=N repeats
#   it exactly). Then bench-s1 (benchmarks/bench_hifigan_s1: it against universal and
#   Griffin-Lim in one run) and ship-s1 (float16 copy into avtool/weights/hifigan/, prints the
#   sha256 and size for models.toml). Measured figures: docs/vocode.md.
#
#   make -f recipes/vocoder.mk finetune-s1 bench-s1 ship-s1
#
# Variables: DATA, OUT, CONFIG (debug|v1|v2|v3|path/to/config.json), STEPS, BATCH (empty: the
#   config's), DEVICE (auto|cpu|cuda), LOG_EVERY, CHECKPOINT_EVERY; smoke also SMOKE_STEPS and
#   THREADS (CPU threads; 1 keeps the tiny model fast on a busy machine); finetune-s1 also
#   S1_CLIPS, FT_OUT, FT_STEPS, FT_MINUTES, FT_BATCH, FT_LR, FT_DIVISOR, SHIP.
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
S1_CLIPS ?= ../shared/data/grid_s1/clips
FT_OUT ?= out/vocoder-s1
FT_STEPS ?= 400
FT_MINUTES ?= 40
FT_BATCH ?= 8
FT_LR ?= 1e-4
FT_DIVISOR ?= 4
SHIP ?= avtool/weights/hifigan/hifigan-v1-grid-s1.pt

TRAIN = $(PYTHON) -m avtool.training.hifigan --data $(DATA) --out $(OUT) --config $(CONFIG) \
	--device $(DEVICE) $(if $(BATCH),--batch-size $(BATCH)) --resume

.PHONY: smoke train s1-list finetune-s1 bench-s1 ship-s1

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

# s1's training clips, then one validation clip last (the trainer holds out the last listed).
s1-list:
	mkdir -p $(FT_OUT)
	$(PYTHON) -c 'import sys; from pathlib import Path; from avtool.datasets.grid import s1_split; \
		s = s1_split(); d = Path(sys.argv[1]).resolve(); \
		ids = s["train"] + s["val"][:1]; \
		Path(sys.argv[2]).write_text("".join(f"{d / i}.mkv\n" for i in ids))' \
		$(S1_CLIPS) $(FT_OUT)/s1_train.txt

finetune-s1: s1-list
	OMP_NUM_THREADS=$(THREADS) $(PYTHON) -m avtool.training.hifigan --data $(FT_OUT)/s1_train.txt \
		--out $(FT_OUT) --config v1 --init hifigan-v1-universal --learning-rate $(FT_LR) \
		--disc-width-divisor $(FT_DIVISOR) --batch-size $(FT_BATCH) --steps $(FT_STEPS) \
		--max-minutes $(FT_MINUTES) --log-every 10 --checkpoint-every 20 --device cpu --resume

# The newest g_ file of FT_OUT.
FT_LAST = $$(ls $(FT_OUT)/g_* | sort | tail -1)

bench-s1:
	OMP_NUM_THREADS=$(THREADS) $(PYTHON) -m benchmarks.bench_hifigan_s1 --candidate $(FT_LAST) \
		--out bench-results

ship-s1:
	mkdir -p $(dir $(SHIP))
	$(PYTHON) -c 'import sys; from avtool.training.hifigan import export_generator; \
		export_generator(sys.argv[1], sys.argv[2])' $(FT_LAST) $(SHIP)
	sha256sum $(SHIP) && stat -c 'size = %s' $(SHIP)
