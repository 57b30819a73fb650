# Train the video-to-speech model (avtool.models.v2a) on GRID s1, then its audio-visual
# extension (AV2A), evaluate both on the held-out s1 test split and six unseen-speaker clips,
# and ship them as the offline defaults `v2a-grid-s1` and `av2a-grid-s1`.
#
#   make -f recipes/v2a.mk cache      # face stage once per clip -> CACHE (shared with lipread)
#   make -f recipes/v2a.mk train      # stage 1, V2A: reduced config, 1 CPU thread
#   make -f recipes/v2a.mk finetune   # stage 1b: warm restart of OUT/v2a/best.pt with the
#                                     # lip-landmark stream added (what v2a-grid-s1 ships)
#   make -f recipes/v2a.mk train-av   # stage 2, AV2A from the stage-1b V2A weights (modality dropout)
#   make -f recipes/v2a.mk train-content  # stage 3: a new mel decoder over the frozen stage-1b V2A
#                                     # and the lip reader (READER, trained on the same split):
#                                     # what `v2a-content-grid-s1`, the default, ships
#   make -f recipes/v2a.mk calibrate  # output timing of v2a-lips and content on the val split
#                                     # (python -m avtool.tasks.calibrate_v2a -> output_advance)
#   make -f recipes/v2a.mk eval       # OUT/eval.json: STOI/ESTOI/PESQ/MCD/WER + AV ablation
#   make -f recipes/v2a.mk ship       # copy weights into avtool/weights/v2a, print hashes
#   make -f recipes/v2a.mk smoke      # debug config on 16 clips, < 1 min
#   make -f recipes/v2a.mk identity   # the training speaker's face reference (speaker guard):
#                                     # dlib descriptors of every 4th s1 TRAINING clip, ~5 min
#   make -f recipes/v2a.mk av2a-synth # the seed paper's AV2A (arXiv 2307.16584): the default
#                                     # model synthesises a mel for every cached s1 clip, then
#                                     # the three procedures (baseline, modality dropout,
#                                     # dropout + GT audio in audio-only steps), each bounded to
#                                     # SYN_MINUTES on THREADS, video encoder frozen (CPU)
#   make -f recipes/v2a.mk eval-synth # OUT/eval-synth.json: V2A vs the three AV2A, s1 test
#
# The split is avtool/datasets/grid_s1_split.json (761 train / 39 val / 100 test; the test
# clips are never read by training). Runs are deterministic for a SEED and THREADS, resumable
# (rerun with the same OUT), keep the best-on-val weights as OUT/best.pt + OUT/config.json and
# stop at MINUTES of wall clock. CONFIG=full is the paper-sized model (88x88 crops, ResNet-18-
# like front-end, 2-layer BiGRU 256): a GPU job. The shipped weights are CONFIG=reduced trained
# on the CPU (EPOCHS/MINUTES below), see README "avtool v2a".
#
# Variables: DATA, CACHE, OUT, CONFIG (full|reduced|debug), EPOCHS, MINUTES, FT_EPOCHS,
#   FT_MINUTES, FT_LR, AV_EPOCHS, AV_MINUTES, SEED, THREADS, BATCH, LR, AV_LR, UNSEEN.
PYTHON ?= .venv/bin/python
AVTOOL ?= .venv/bin/avtool
DATA ?= ../shared/data/grid_s1
UNSEEN ?= ../shared/data/grid
CACHE ?= data/grid_s1_cache
OUT ?= data/v2a_runs
CONFIG ?= reduced
EPOCHS ?= 14
MINUTES ?= 40
FT_EPOCHS ?= 9
FT_MINUTES ?= 36
FT_LR ?= 0.0007
AV_EPOCHS ?= 3
AV_MINUTES ?= 12
SEED ?= 0
THREADS ?= 1
BATCH ?= 8
LR ?= 0.0015
AV_LR ?= 0.0005
# The shipped content model reads the shipped lipread-grid-s1 (with its lip stream).
READER ?= avtool/weights/lipread/lipread-grid-s1.pt
C_EPOCHS ?= 40
C_MINUTES ?= 60
WEIGHTS := avtool/weights/v2a

SYN_MINUTES ?= 15
SYN_EPOCHS ?= 12
SYNTH := $(OUT)/synth

.PHONY: cache train finetune train-av train-content calibrate eval ship smoke identity \
	av2a-synth eval-synth

cache:
	$(PYTHON) -m avtool.training.grid_cache $(DATA) $(CACHE)

train:
	nice -n 5 $(PYTHON) -m avtool.training.v2a --cache $(CACHE) --out $(OUT)/v2a \
		--config $(CONFIG) --epochs $(EPOCHS) --max-minutes $(MINUTES) --seed $(SEED) \
		--threads $(THREADS) --batch-size $(BATCH) --lr $(LR)

finetune:
	nice -n 5 $(PYTHON) -m avtool.training.v2a --cache $(CACHE) --out $(OUT)/v2a-lips \
		--config $(CONFIG) --init $(OUT)/v2a/best.pt --lip-landmarks --epochs $(FT_EPOCHS) \
		--max-minutes $(FT_MINUTES) --seed $(SEED) --threads $(THREADS) \
		--batch-size $(BATCH) --lr $(FT_LR)

train-av:
	nice -n 5 $(PYTHON) -m avtool.training.v2a --cache $(CACHE) --out $(OUT)/av2a \
		--stage av2a --init $(OUT)/v2a-lips/best.pt --epochs $(AV_EPOCHS) \
		--max-minutes $(AV_MINUTES) --seed $(SEED) --threads $(THREADS) \
		--batch-size $(BATCH) --lr $(AV_LR)

train-content:
	OMP_NUM_THREADS=$(THREADS) nice -n 5 $(PYTHON) -m avtool.training.v2a_content \
		--cache $(CACHE) --out $(OUT)/content --acoustic $(OUT)/v2a-lips/best.pt \
		--reader $(READER) --epochs $(C_EPOCHS) --max-minutes $(C_MINUTES) --seed $(SEED) \
		--threads $(THREADS)

# Validation STOI of each model's mel moved 0..3 frames earlier; the best advance goes into its
# config JSON (mel regression leaves the speech about one frame late). Copy v2a-lips' value into
# the registry's inline config of v2a-grid-s1 when shipping.
calibrate:
	$(PYTHON) -m avtool.tasks.calibrate_v2a --cache $(CACHE) --model $(OUT)/v2a-lips/best.pt \
		--threads $(THREADS)
	$(PYTHON) -m avtool.tasks.calibrate_v2a --cache $(CACHE) --model $(OUT)/content/v2a.pt \
		--threads $(THREADS)

eval:
	cp $(OUT)/v2a-lips/best.pt $(OUT)/v2a.pt
	cp $(OUT)/v2a-lips/config.json $(OUT)/v2a.pt.json
	cp $(OUT)/av2a/best.pt $(OUT)/av2a.pt && cp $(OUT)/av2a/config.json $(OUT)/av2a.pt.json
	AVTOOL_ACCEPT_LICENSE=1 $(AVTOOL) eval v2a --cache $(CACHE) --unseen $(UNSEEN) \
		--model $(OUT)/v2a.pt --av-model $(OUT)/av2a.pt --ablation-limit 100 \
		-o $(OUT)/eval.json
	AVTOOL_ACCEPT_LICENSE=1 $(AVTOOL) eval v2a --cache $(CACHE) --unseen $(UNSEEN) \
		--model $(OUT)/content/v2a.pt -o $(OUT)/eval-content.json

ship:
	mkdir -p $(WEIGHTS)
	cp $(OUT)/v2a-lips/best.pt $(WEIGHTS)/v2a-grid-s1.pt
	cp $(OUT)/av2a/best.pt $(WEIGHTS)/av2a-grid-s1.pt
	cp $(OUT)/content/v2a.pt $(WEIGHTS)/v2a-content-grid-s1.pt
	cp $(OUT)/content/v2a.pt.json $(WEIGHTS)/v2a-content-grid-s1.pt.json
	cp $(OUT)/content/summary.json $(WEIGHTS)/v2a-content-grid-s1.train.json
	@for f in $(WEIGHTS)/v2a-grid-s1.pt $(WEIGHTS)/av2a-grid-s1.pt \
		$(WEIGHTS)/v2a-content-grid-s1.pt $(WEIGHTS)/v2a-content-grid-s1.pt.json; do \
		echo "$$f sha256 = $$(sha256sum $$f | cut -d' ' -f1) size = $$(stat -c %s $$f)"; done
	@echo "copy these (and OUT/*/config.json as the entries' config) into avtool/models.toml"

smoke:
	$(PYTHON) -m avtool.training.v2a --cache $(CACHE) --out $(OUT)/smoke --config debug \
		--epochs 1 --limit 16 --max-minutes 1
	$(PYTHON) -m avtool.training.v2a --cache $(CACHE) --out $(OUT)/smoke-av --stage av2a \
		--init $(OUT)/smoke/best.pt --epochs 1 --limit 16 --max-minutes 1

identity:
	$(PYTHON) -m avtool.training.identity_reference build --data $(DATA) \
		--out avtool/weights/identity/identity-grid-s1.npz --stride 4
	$(PYTHON) -m avtool.training.identity_reference measure \
		--reference avtool/weights/identity/identity-grid-s1.npz --set s1_val=$(DATA):val \
		--set s1_test=$(DATA):test --set grid=$(UNSEEN) --set s4=../shared/data/grid_s4 \
		--out $(OUT)/identity.json

av2a-synth:
	OMP_NUM_THREADS=$(THREADS) $(PYTHON) -m avtool.training.av2a_synth synth --cache $(CACHE) \
		--out $(SYNTH)
	for proc in baseline dropout dropout-gt; do \
		OMP_NUM_THREADS=$(THREADS) nice -n 5 $(PYTHON) -m avtool.training.av2a_synth train \
			--cache $(CACHE) --synth $(SYNTH) --out $(OUT)/av2a-$$proc --procedure $$proc \
			--epochs $(SYN_EPOCHS) --max-minutes $(SYN_MINUTES) --seed $(SEED) \
			--threads $(THREADS) || exit 1; \
	done

eval-synth:
	for proc in baseline dropout dropout-gt; do \
		cp $(OUT)/av2a-$$proc/best.pt $(OUT)/av2a-$$proc.pt; \
		cp $(OUT)/av2a-$$proc/config.json $(OUT)/av2a-$$proc.pt.json; done
	AVTOOL_ACCEPT_LICENSE=1 $(AVTOOL) eval v2a --cache $(CACHE) --av-model '' --no-resynth \
		--av2a-synth baseline=$(OUT)/av2a-baseline.pt --av2a-synth dropout=$(OUT)/av2a-dropout.pt \
		--av2a-synth dropout-gt=$(OUT)/av2a-dropout-gt.pt -o $(OUT)/eval-synth.json
