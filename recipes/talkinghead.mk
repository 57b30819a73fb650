# AnyoneNet talking heads: extract training data from talking-face videos, train the landmark
# predictor and the landmark-to-image renderer.
#
#   make -f recipes/talkinghead.mk smoke                 # tiny models, a few steps, ~1-2 min CPU
#   make -f recipes/talkinghead.mk train DATA=path/to/videos OUT=runs/anyonenet DEVICE=cuda
#
# extract: python -m avtool.models.anyonenet.data tracks each video's face (dlib, 25 fps),
#   registers it (frontal landmarks + head-pose quaternions), computes 80 Hz mels (16 kHz,
#   50 ms window, 12.5 ms hop) and upsamples the track to them; with FRAME_SIZE it also stores
#   face crops for the renderer. One OUT/data/<id>.npz per clip; failing clips are listed in
#   OUT/data/index.json and the rest go on. A GRID cache (avtool.training.grid_cache) can be used
#   instead of videos: python -m avtool.models.anyonenet.data data/grid_s1_cache OUT --from-cache
#
# train: the paper-size predictor (32.5 M parameters) and renderer (UNet-256, 54.4 M; PatchGAN
#   2.8 M). Both are resumable (re-run the target; STEPS is the total to reach) and seeded.
#   The perceptual loss needs torchvision's ImageNet VGG-19 (vgg19-dcbb9e9d.pth, fetched by
#   torchvision.models.vgg19(weights="IMAGENET1K_V1") on a machine with internet): pass
#   VGG=path/to/vgg19-dcbb9e9d.pth. Without it the renderer uses the discriminator
#   feature-matching loss instead and its log says so.
#
# VoxCeleb2 / Obama-style data: put the talking-face videos (mp4 with audio, one speaker
#   facing the camera, any frame rate: they are resampled to 25 fps) in one folder and give
#   it as DATA. VoxCeleb2's dev set (~1 M utterances) is the paper's predictor data; for a
#   single person (an Obama weekly-address set) a few hours of video suffice for the renderer.
#   Extraction runs the dlib face stage on every frame (~20 frames/s per CPU core): split the
#   folder and run several extractions in parallel into the same OUT/data if needed.
#
# The predictor alone drives the warping renderer: avtool.models.anyonenet.infer.predict_track
#   (checkpoint OUT/predictor/predictor.pt) returns the landmark track for a face and a speech
#   file. avtool ships one: `anyonenet-predictor-grid-s1` (`--model anyonenet`), the reduced
#   predictor trained on GRID s1 by the `s1` target below (2,500 steps, best on val, ~10 CPU
#   minutes); speaker-dependent, and weaker than the viseme driver on unseen speakers (README).
#
# It also ships one UNet renderer: `anyonenet-unet-grid-s1` (`--model anyonenet-unet`), the
#   reduced renderer (RendererConfig.reduced(): 256x256, 16 base channels, 3.4 M parameters)
#   trained on the CPU by the `s1-renderer` target below: face crops cut around the GRID s1
#   cache's landmarks (no dlib run), 380 train clips (every 2nd of the split, every 4th frame),
#   10 val clips, S1_RENDER_STEPS steps at batch 4 on one thread, best on val L1 (no VGG here,
#   so the feature-matching loss). Speaker-dependent and reduced; the paper size needs a GPU.
#   `make -f recipes/talkinghead.mk s1-renderer OUT=out` rebuilds out/s1-renderer as shipped.
#   `--model anyonenet-full` runs both shipped networks: the predictor's landmarks drawn by the UNet.
#
# Variables: DATA, OUT, DEVICE, STEPS, RENDER_STEPS, FRAME_SIZE, VGG, THREADS, SMOKE_STEPS,
#   S1_CACHE, S1_CLIPS, S1_RENDER_STEPS.
PYTHON ?= .venv/bin/python
DATA ?= ../shared/data/grid
OUT ?= out/talkinghead
DEVICE ?= cpu
STEPS ?= 100000
RENDER_STEPS ?= 200000
FRAME_SIZE ?= 256
VGG ?=
THREADS ?= 1
SMOKE_STEPS ?= 20

S1_CACHE ?= data/grid_s1_cache
S1_CLIPS ?= ../shared/data/grid_s1/clips
S1_RENDER_STEPS ?= 8000
BANK_CLIPS ?= 333

.PHONY: smoke extract train train-predictor train-renderer s1 s1-renderer mouth-bank mouth-driver

# The shipped mouth-interior bank (`--mouth bank`, avtool/weights/talkinghead/): real teeth,
# tongue and darkness cut from the first BANK_CLIPS GRID s1 TRAINING-split clips (by id; never
# val/test, grid_s4 or the other speakers), landmarks from the s1 cache (dlib tracking for a
# clip without one), one typical sharp frame per (opening, width) cell. Deterministic; about
# 5 minutes on one thread with the cache. Then update models.toml's sha256 and size.
mouth-bank:
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(PYTHON) -m avtool.training.mouth_bank \
		--clips $(S1_CLIPS) --cache $(S1_CACHE) --limit $(BANK_CLIPS) \
		--out $(OUT)/mouth-bank-grid-s1.npz
	sha256sum $(OUT)/mouth-bank-grid-s1.npz

# The audio-refined jaw opening's weights (avtool/models/facewarp/opening.py WEIGHTS): a ridge
# read-out of viseme parameters and band levels fitted on every 2nd cached GRID s1 TRAINING-split
# clip (never val/test, grid_s4 or the other speakers). Prints the table; fails when it differs
# from the shipped one. About 5 minutes on one thread (phone recognition of 257 clips).
mouth-driver:
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(PYTHON) -m avtool.training.mouth_driver \
		--cache $(S1_CACHE) --out $(OUT)/mouth-driver.json --check

# The shipped predictor: the GRID s1 cache (python -m avtool.training.grid_cache) -> 80 Hz items per
# split -> the reduced predictor, selected on val lip-point distance (OUT/s1/predictor/best.pt).
s1:
	for split in train val test; do \
		$(PYTHON) -m avtool.models.anyonenet.data $(S1_CACHE) $(OUT)/s1/$$split --from-cache \
			--split $$split || exit 1; done
	$(PYTHON) -m avtool.training.anyonenet.predictor --data $(OUT)/s1/train \
		--heldout-data $(OUT)/s1/val --out $(OUT)/s1/predictor --config reduced --steps 2500 \
		--threads $(THREADS) --resume
	$(PYTHON) -m avtool.training.anyonenet.evaluate --model $(OUT)/s1/predictor/best.pt \
		--data $(OUT)/s1/test

# The shipped UNet: 256 px face crops from the s1 cache's landmarks and the clips' frames ->
# the reduced renderer (seeded, resumable; best.pt = lowest val L1) -> image quality on 8
# held-out test clips (benchmarks/bench_talkinghead_unet.py) and a preview PNG.
s1-renderer:
	$(PYTHON) -m avtool.models.anyonenet.data $(S1_CACHE) $(OUT)/s1-renderer/train --from-cache \
		--clips $(S1_CLIPS) --split train --id-step 2 --frame-size 256 --frame-step 4
	$(PYTHON) -m avtool.models.anyonenet.data $(S1_CACHE) $(OUT)/s1-renderer/val --from-cache \
		--clips $(S1_CLIPS) --split val --id-step 4 --frame-size 256 --frame-step 4
	$(PYTHON) -m avtool.training.anyonenet.renderer --data $(OUT)/s1-renderer/train \
		--heldout-data $(OUT)/s1-renderer/val --out $(OUT)/s1-renderer/run --config reduced \
		--steps $(S1_RENDER_STEPS) --batch-size 4 --seed 0 --log-every 250 \
		--checkpoint-every 250 --threads $(THREADS) --resume
	AVTOOL_ACCEPT_LICENSE=1 $(PYTHON) -m benchmarks.bench_talkinghead_unet \
		--model $(OUT)/s1-renderer/run/best.pt --clips 8 --out $(OUT)/s1-renderer \
		--preview $(OUT)/s1-renderer/preview.png
	AVTOOL_ACCEPT_LICENSE=1 $(PYTHON) -m benchmarks.bench_talkinghead --s1-test 10 \
		--compare $(OUT)/s1-renderer/run/best.pt --out $(OUT)/s1-renderer

extract:
	OMP_NUM_THREADS=$(THREADS) $(PYTHON) -m avtool.models.anyonenet.data $(DATA) $(OUT)/data \
		--frame-size $(FRAME_SIZE)

train-predictor: extract
	$(PYTHON) -m avtool.training.anyonenet.predictor --data $(OUT)/data \
		--out $(OUT)/predictor --config paper --steps $(STEPS) --device $(DEVICE) --resume

train-renderer: extract
	$(PYTHON) -m avtool.training.anyonenet.renderer --data $(OUT)/data \
		--out $(OUT)/renderer --config paper --steps $(RENDER_STEPS) --device $(DEVICE) \
		$(if $(VGG),--vgg $(VGG)) --resume

train: train-predictor train-renderer

# Tiny models on the six GRID clips: checks the plumbing, not the quality.
smoke:
	OMP_NUM_THREADS=$(THREADS) $(PYTHON) -m avtool.models.anyonenet.data $(DATA) \
		$(OUT)/smoke-data --frame-size 32 --frame-step 5
	$(PYTHON) -m avtool.training.anyonenet.predictor --data $(OUT)/smoke-data \
		--out $(OUT)/smoke-predictor --config debug --steps $(SMOKE_STEPS) --log-every 5 \
		--threads $(THREADS) --resume
	$(PYTHON) -m avtool.training.anyonenet.renderer --data $(OUT)/smoke-data \
		--out $(OUT)/smoke-renderer --config debug --steps $(SMOKE_STEPS) --batch-size 2 \
		--log-every 5 --threads $(THREADS) $(if $(VGG),--vgg $(VGG)) --resume
	@echo "logs: $(OUT)/smoke-predictor/train_log.jsonl $(OUT)/smoke-renderer/train_log.jsonl"

