# Any file-to-file subcommand with one make rule per input: `make -j8` runs 8 at once and a
# changed input redoes only its own output. Usage:
#   make -j8 -f recipes/batch-files.mk COMMAND=vocode IN=clips OUT=out/resynth SUFFIX=.mpg \
#       OUTPUT_SUFFIX=.wav ARGS='--model griffin-lim'
#   make -j4 -f recipes/batch-files.mk COMMAND=lipread IN=clips OUT=out/text SUFFIX=.mpg \
#       OUTPUT_SUFFIX=.txt ARGS='--accept-license --grammar grid'
# Each rule is one avtool process (one model load per input); see docs/scale.md for batches
# that load the model once per worker.
AVTOOL ?= .venv/bin/avtool
COMMAND ?= vocode
IN ?= in
OUT ?= out/$(COMMAND)
SUFFIX ?= .wav
OUTPUT_SUFFIX ?= .wav
ARGS ?=

INPUTS := $(sort $(wildcard $(IN)/*$(SUFFIX)))
OUTPUTS := $(patsubst $(IN)/%$(SUFFIX),$(OUT)/%$(OUTPUT_SUFFIX),$(INPUTS))

.PHONY: all
all: $(OUTPUTS)

$(OUT)/%$(OUTPUT_SUFFIX): $(IN)/%$(SUFFIX)
	$(AVTOOL) $(COMMAND) $< -o $@ --overwrite --quiet $(ARGS)
