# Train LipNet (avtool.models.lipnet) on a folder of GRID-style clips + alignments, evaluate it
# on the held-out split and ship it as the offline default `lipnet-grid-s1`.
#
#   make -f recipes/lipread.mk cache     # face stage once per clip -> CACHE (~25 min for s1)
#   make -f recipes/lipread.mk train     # reduced config, 1 CPU thread, EPOCHS / MINUTES
#   make -f recipes/lipread.mk eval      # OUT/eval.json: WER/CER per decoder, s1 test split
#   make -f recipes/lipread.mk ship      # copy the best checkpoint into avtool/weights/lipread
#   make -f recipes/lipread.mk smoke     # debug config on 20 clips, one epoch, < 1 min
#
# DATA is a folder with clips/<id>.<video> and align/<id>.align (GRID layout). The s1 split
# (avtool/datasets/grid_s1_split.json: 761 train / 39 val / 100 test) is used when the cache
# holds s1, else a hash split of the clip ids. Training keeps the best-on-validation weights
# (greedy CER) as OUT/lipnet.pt + OUT/lipnet.pt.json and can be resumed (RESUME=1).
# Same cache + SEED + options -> the same weights (single thread, deterministic kernels).
# GPU-less machines: CONFIG=reduced (grey 25x50 crops, 16/32/48 channels, BiGRU 128).
# CONFIG=paper is LipNet as published (3x50x100, 32/64/96, BiGRU 256): ~4x the compute.
#
# Variables: DATA, CACHE, OUT, CONFIG (paper|reduced|debug), EPOCHS, MINUTES, SEED, THREADS,
#   BATCH, LR, RESUME.
#
# The ResNet/BiGRU reader (avtool.models.lipread_resnet), shipped as the default
# `lipread-grid-s1`: its video encoder starts from the v2a-grid-s1 weights (trained on the same
# s1 train split; the shipped run used the earlier file with sha256 fb2b489c..., before v2a
# gained its lip-landmark stream: pass V2A_INIT=that file to repeat it), objective CTC +
# R_WORD_WEIGHT x per-frame GRID-word cross-entropy.
#   make -f recipes/lipread.mk train-resnet   # R_EPOCHS (16) epochs, 1 thread, ~25 min on 2 cores
#   make -f recipes/lipread.mk eval-resnet    # R_OUT/eval.json on the s1 test split
#   make -f recipes/lipread.mk ship-resnet    # copy into avtool/weights/lipread + print hashes
#   make -f recipes/lipread.mk smoke-resnet   # debug config on 20 clips, 5 steps
#   make -f recipes/lipread.mk finetune-lips  # add the lip-landmark stream to L_INIT by warm start
R_OUT ?= data/lipread_runs/long
R_CONFIG ?= reduced
R_EPOCHS ?= 16
R_BATCH ?= 8
R_LR ?= 0.0015
R_WORD_WEIGHT ?= 0.5
R_MINUTES ?= 34
# finetune-lips: warm start from a trained reader (the run behind the shipped weights) with the
# lip-landmark stream added (zero-initialised, so it starts from the same predictions).
L_INIT ?= data/lipread_runs/long6/lipread.pt
L_OUT ?= data/lipread_runs/lips1
L_EPOCHS ?= 14
L_LR ?= 0.001
L_MINUTES ?= 25
# The shipped lipread-grid-s1 started from the first v2a-grid-s1 (sha256 fb2b489c..., before v2a's
# lip-landmark stream): `git show f92e9f5:avtool/weights/v2a/v2a-grid-s1.pt > v2a-init.pt` and
# pass V2A_INIT=v2a-init.pt to repeat it; the current v2a weights fit the encoder as well.
V2A_INIT ?= avtool/weights/v2a/v2a-grid-s1.pt
PYTHON ?= .venv/bin/python
AVTOOL ?= .venv/bin/avtool
DATA ?= ../shared/data/grid_s1
CACHE ?= data/grid_s1_cache
OUT ?= data/lipnet_run
CONFIG ?= reduced
EPOCHS ?= 12
MINUTES ?= 50
SEED ?= 0
THREADS ?= 1
BATCH ?= 4
LR ?= 0.002
RESUME ?=
WEIGHTS := avtool/weights/lipread

.PHONY: cache train eval ship smoke train-resnet finetune-resnet eval-resnet ship-resnet \
	smoke-resnet finetune-lips

cache:
	$(PYTHON) -m avtool.training.grid_cache $(DATA) $(CACHE)

train:
	OMP_NUM_THREADS=$(THREADS) nice -n 5 $(PYTHON) -m avtool.training.lipnet \
		--cache $(CACHE) --out $(OUT) --config $(CONFIG) --epochs $(EPOCHS) \
		--max-minutes $(MINUTES) --seed $(SEED) --threads $(THREADS) --batch-size $(BATCH) \
		--lr $(LR) $(if $(RESUME),--resume) 2>&1 | tee -a $(OUT).train.log

eval:
	AVTOOL_ACCEPT_LICENSE=1 $(AVTOOL) --json eval lipread $(DATA) --split test \
		--model $(OUT)/lipnet.pt --cache $(CACHE) -o $(OUT)/eval.json > /dev/null
	$(PYTHON) -c "import json; r = json.load(open('$(OUT)/eval.json')); \
		print({d: (v['wer'], v['cer']) for d, v in r['decoders'].items()})"

ship:
	mkdir -p $(WEIGHTS)
	cp $(OUT)/lipnet.pt $(WEIGHTS)/lipnet-grid-s1.pt
	cp $(OUT)/lipnet.pt.json $(WEIGHTS)/lipnet-grid-s1.pt.json
	@for f in $(WEIGHTS)/lipnet-grid-s1.pt $(WEIGHTS)/lipnet-grid-s1.pt.json; do \
		echo "$$f sha256 = $$(sha256sum $$f | cut -d' ' -f1) size = $$(stat -c %s $$f)"; done
	@echo "copy these into avtool/models.toml [models.lipnet-grid-s1]"

smoke:
	$(PYTHON) -m avtool.training.lipnet --cache $(CACHE) --out $(OUT)-smoke \
		--config debug --epochs 1 --limit 20 --max-minutes 2

train-resnet:
	OMP_NUM_THREADS=$(THREADS) nice -n 5 $(PYTHON) -m avtool.training.lipread_resnet \
		--cache $(CACHE) --out $(R_OUT) --config $(R_CONFIG) --init-v2a $(V2A_INIT) \
		--epochs $(R_EPOCHS) --batch-size $(R_BATCH) --lr $(R_LR) \
		--word-weight $(R_WORD_WEIGHT) --max-minutes $(R_MINUTES) --seed $(SEED) \
		--threads $(THREADS) $(if $(RESUME),--resume) 2>&1 | tee -a $(R_OUT).train.log

# The shipped lipread-grid-s1 = train-resnet (16 epochs) then five warm restarts of the same run:
# --resume with a longer --epochs re-stretches the cosine schedule from where it stopped
# (16 -> 26 -> 36 -> 46 -> 56 -> 66 epochs; the best-on-val checkpoint is kept, epoch 62).
# ~7-15 min each with one thread on the shared 2-core machine.
finetune-resnet:
	for epochs in 26 36 46 56 66; do \
		OMP_NUM_THREADS=$(THREADS) nice -n 5 $(PYTHON) -m avtool.training.lipread_resnet \
			--cache $(CACHE) --out $(R_OUT) --config $(R_CONFIG) --init-v2a $(V2A_INIT) \
			--epochs $$epochs --batch-size $(R_BATCH) --lr $(R_LR) \
			--word-weight $(R_WORD_WEIGHT) --max-minutes $(R_MINUTES) --seed $(SEED) \
			--threads $(THREADS) --resume 2>&1 | tee -a $(R_OUT).train.log || exit 1; done

# The lip-landmark stream (lips.*: v2a's LipEncoder over lip_features of the cache landmarks)
# added to L_INIT: every other tensor is loaded from it, lips.mean/std come from the training
# clips, fresh AdamW and cosine schedule (peak L_LR, about half the original peak, as for v2a).
# Best by val greedy CER -> L_OUT/lipread.pt; evaluate with `make eval-resnet R_OUT=$(L_OUT)`.
finetune-lips:
	OMP_NUM_THREADS=$(THREADS) nice -n 5 $(PYTHON) -m avtool.training.lipread_resnet \
		--cache $(CACHE) --out $(L_OUT) --init-reader $(L_INIT) --lip-landmarks \
		--epochs $(L_EPOCHS) --batch-size $(R_BATCH) --lr $(L_LR) \
		--word-weight $(R_WORD_WEIGHT) --max-minutes $(L_MINUTES) --seed $(SEED) \
		--threads $(THREADS) 2>&1 | tee -a $(L_OUT).train.log

eval-resnet:
	AVTOOL_ACCEPT_LICENSE=1 $(AVTOOL) --json eval lipread $(DATA) --split test \
		--model $(R_OUT)/lipread.pt --cache $(CACHE) -o $(R_OUT)/eval.json > /dev/null
	$(PYTHON) -c "import json; r = json.load(open('$(R_OUT)/eval.json')); \
		print({d: (v['wer'], v['cer']) for d, v in r['decoders'].items()})"

ship-resnet:
	mkdir -p $(WEIGHTS)
	cp $(R_OUT)/lipread.pt $(WEIGHTS)/lipread-grid-s1.pt
	cp $(R_OUT)/lipread.pt.json $(WEIGHTS)/lipread-grid-s1.pt.json
	@for f in $(WEIGHTS)/lipread-grid-s1.pt $(WEIGHTS)/lipread-grid-s1.pt.json; do \
		echo "$$f sha256 = $$(sha256sum $$f | cut -d' ' -f1) size = $$(stat -c %s $$f)"; done
	@echo "copy these into avtool/models.toml [models.lipread-grid-s1]"

smoke-resnet:
	$(PYTHON) -m avtool.training.lipread_resnet --cache $(CACHE) --out $(R_OUT)-smoke \
		--config debug --epochs 1 --limit 20 --max-steps 5 --max-minutes 2
