# The two commands of the README: `make repro` (the pipeline on the embedded default) and
# `make test`. Both do all set-up first (scripts/setup.sh is idempotent).
VENV ?= .venv
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export DVC_NO_ANALYTICS := 1

.PHONY: setup setup-test repro test test-all bench push pull
setup:
	bash scripts/setup.sh

repro: setup
	dvc repro

# -n auto --dist loadfile: one worker per core, a test file stays on one worker (the e2e file
# shares one dvc repro across its tests); 472 s -> 366 s on 2 cores.
# The tests also render the project's HTML pages in headless chromium (tests/_browser.py):
# set-up installs it, and SAFURAI_REQUIRE_BROWSER=1 makes a missing browser a failure, not a skip.
setup-test:
	bash scripts/setup.sh --with-browser

test: setup-test
	SAFURAI_REQUIRE_BROWSER=1 python -m pytest -q -m "not slow" -n auto --dist loadfile

test-all: setup-test
	SAFURAI_REQUIRE_BROWSER=1 python -m pytest -q

bench: setup
	python benchmarks/bench_executor.py

# Every cached stage out to / from the default DVC remote (docs/pipeline.md: a folder under ~
# unless .dvc/config or .dvc/config.local says otherwise, e.g. S3).
push: setup
	dvc push

pull: setup
	dvc pull
