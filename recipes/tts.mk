# Batch text-to-speech as a Makefile pipeline: one WAV (+ sidecar + timings) per line of a text
# file, rebuilt only when the text changes. Usage:
#   make -f recipes/tts.mk LINES=lines.txt OUT=out/tts [VOICE=hibari-heart] [SEED=0]
AVTOOL ?= .venv/bin/avtool
LINES ?= lines.txt
OUT ?= out/tts
VOICE ?= piper-joe-medium
SEED ?= 0

MANIFEST := $(OUT)/manifest.jsonl

.PHONY: all
all: $(OUT)/.done

# One JSONL item per non-empty line, id = line number.
$(MANIFEST): $(LINES)
	mkdir -p $(OUT)
	python3 -c 'import json,sys; [print(json.dumps({"id": f"line{i:05d}", "text": t.strip()})) for i, t in enumerate(open(sys.argv[1], encoding="utf-8"), 1) if t.strip()]' $< > $@

$(OUT)/.done: $(MANIFEST)
	$(AVTOOL) --seed $(SEED) tts -m $< --voice $(VOICE) -o '$(OUT)/{id}.wav' \
		--timings '$(OUT)/{id}.timings.json' --overwrite --report $(OUT)/status.jsonl
	touch $@
