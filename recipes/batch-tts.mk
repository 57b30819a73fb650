# Batch text-to-speech with one make rule per line: `make -j8` renders 8 lines at once, and an
# edited line re-renders only its own WAV (each line's text lives in its own file, rewritten
# only when that line changes). Usage:
#   make -j8 -f recipes/batch-tts.mk LINES=lines.txt OUT=out/tts [VOICE=hibari-heart] [SEED=0]
# Ids are line numbers (line00001...): inserting a line shifts the ids of the lines below it.
# Each rule is one avtool process, so each loads the voice: for thousands of lines one
# `avtool tts -m` batch (or --engine ray) loads it once per worker instead.
AVTOOL ?= .venv/bin/avtool
PYTHON ?= python3
LINES ?= lines.txt
OUT ?= out/tts
VOICE ?= piper-joe-medium
SEED ?= 0
SPLIT := $(dir $(lastword $(MAKEFILE_LIST)))split_lines.py

ITEMS := $(OUT)/items.mk
# Defines IDS; make rebuilds it (below) when LINES changes and then reads it again.
-include $(ITEMS)

.PHONY: all
all: $(patsubst %,$(OUT)/%.wav,$(IDS))

$(ITEMS): $(LINES) $(SPLIT)
	$(PYTHON) $(SPLIT) $(LINES) $(OUT)/text $@

$(OUT)/%.wav: $(OUT)/text/%.txt
	$(AVTOOL) tts -f $< --voice $(VOICE) --seed $(SEED) -o $@ \
		--timings $(OUT)/$*.timings.json --overwrite --quiet
