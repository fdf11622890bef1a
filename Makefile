# Workflows. Every target creates .venv and installs what it needs on first use.
#
#   make test        run the test suite (tests/ only)
#   make bench       run the default study, the tutorial reproduction, the report and the
#                    pytest-benchmark suite; everything lands in results/. When an earlier
#                    run exists it compares the study with it (initsuite compare
#                    results/latest/study NEW --fail $(COMPARE_GATES) -> compare.md, plus a
#                    "Compared with" section in the report); a regression is reported and
#                    make goes on
#   make lint        ruff, mypy, import-linter's contracts and a strict build of the docs
#   make docs        build the documentation site (docs/, mkdocs.yml) into site/
#   make reference   copy the newest run's report into results/reference/ (committed), with
#                    report.png: the run's report.html in headless Chromium (bench/screenshot.py);
#                    write the run's figures to results/reference/figures.json and rewrite the
#                    marked figures of README.md and docs/ from it (initsuite.report.prose)
#
# Every measured number in README.md and docs/ comes from one dated run. To regenerate them
# all, on one machine, in this order:
#
#   make bench                                                # results/latest, with steps.json
#   PYTEST_ADDOPTS=--junitxml=results/latest/tests.xml make test   # make test's count and time
#   make reference                                            # figures.json, then the prose
#
# `make bench BENCH_ARGS=` also measures the plain loop and the deep-memory run (about 4 more
# minutes): without it their figures read "—" (pending) in the prose.
#
# GPU users: make TORCH="torch==2.13.0" PIP_TORCH_ARGS="--index-url <your CUDA wheel index>"

PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
PIP_TORCH_ARGS ?=
BIN := $(VENV)/bin
STAMP := $(VENV)/.initsuite-installed

# The default study (make bench): every built-in Linear scheme plus the gain-matched variants.
STUDY_SCHEMES ?= all,xavier_uniform:gain=auto,orthogonal:gain=auto
STUDY_ACTIVATIONS ?= linear,tanh,relu,selu,gelu
STUDY_DEPTHS ?= 10,50,100,200
# 1024 as well (STUDY_WIDTHS=64,128,256,512,1024) costs about 3x the other widths together:
# with the backward pass, about 6 more minutes of make bench on a 2-core CPU
STUDY_WIDTHS ?= 64,128,256,512
STUDY_SEEDS ?= 3
# The training study (make bench): He et al.'s deep ReLU result and tanh with Xavier's gain.
TRAIN_SCHEMES ?= kaiming_normal,xavier_normal,xavier_normal:gain=auto,torch_default
TRAIN_ACTIVATIONS ?= relu,tanh
TRAIN_DEPTH ?= 30
TRAIN_SEEDS ?= 3
# The dynamics study (make bench): Jacobian spectra of orthogonal vs Gaussian weights.
DYNAMICS_SCHEMES ?= orthogonal,orthogonal:gain=auto,xavier_normal,xavier_normal:gain=auto,kaiming_normal
# The architectures study (make bench): conv and residual nets under plain and residual schemes.
ARCH_SCHEMES ?= kaiming_normal,xavier_normal,orthogonal,fixup,skipinit,gpt2,lsuv
ARCH_ARCHS ?= conv:kernel=3,image=8,resmlp:scale=1,resmlp:scale=inv_sqrt_depth
# The frameworks study (make bench): each framework's layer defaults on the same torch nets.
# Conventions (initsuite.apply(model, "flax")) or scheme specs, e.g. the weight laws alone:
# FRAMEWORKS_LAWS=torch_default,kaiming_normal,xavier_uniform
FRAMEWORKS_LAWS ?= torch,flax,keras,hf_bert,timm_vit
# Gates of the comparison with the previous run (make bench): same seeds give the same numbers,
# so the cells' gates are tight; timings on a shared machine are not.
COMPARE_GATES ?= final_std:1%,divergence_layer:0,missing:0,init_ms:50%,forward_ms:50%
RUN ?= results/runs/$(shell date -u +%Y%m%dT%H%M%SZ)
# The benchmark suite's arguments (make bench): the long one-off references (plain loops, the
# deep-memory run, the large grid; about 4 minutes) are left to `pytest bench`; BENCH_ARGS=
# runs everything
BENCH_ARGS ?= -m "not long_reference"
# make bench times each step into $(RUN)/steps.json: `$(TIME) STEP -- COMMAND` runs COMMAND
# and appends its seconds to STEP; set-up and total count from when make read this file
BENCH_T0 := $(shell date +%s.%N)
TIME = $(BIN)/python -m initsuite.results.steps $(RUN)/steps.json
# the files make reference rewrites the marked figures of (initsuite.report.prose)
FIGURE_PAGES ?= README.md $(wildcard docs/*.md docs/guides/*.md)

.PHONY: test bench lint docs reference venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(PIP_TORCH_ARGS) "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[test,bench,conventions]" "$(TORCH)"
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check initsuite tests bench
	$(BIN)/ruff format --check initsuite tests bench
	$(BIN)/mypy initsuite
	$(BIN)/lint-imports
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet --site-dir site

docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site
	@echo "docs: site/index.html"

bench: $(STAMP)
	@mkdir -p $(RUN)
	$(TIME) set-up --since $(BENCH_T0)
	@echo "== default study -> $(RUN)/study"
	$(TIME) study -- $(BIN)/initsuite sweep --schemes $(STUDY_SCHEMES) --activations $(STUDY_ACTIVATIONS) \
		--depths $(STUDY_DEPTHS) --widths $(STUDY_WIDTHS) --seeds $(STUDY_SEEDS) \
		--backward --out $(RUN)/study --quiet
	@echo "== compared with the previous run (results/latest/study, if any) -> $(RUN)/compare.md"
	-test ! -e results/latest/study/meta.json || $(TIME) compare -- $(BIN)/initsuite compare \
		results/latest/study $(RUN)/study --fail $(COMPARE_GATES) --out $(RUN)/compare.md --html $(RUN)/compare.html
	@echo "== tutorial reproduction -> $(RUN)/tutorial"
	$(TIME) tutorial -- $(BIN)/initsuite reproduce tutorial --out $(RUN)/tutorial --quiet
	@echo "== training study -> $(RUN)/training"
	$(TIME) training -- $(BIN)/initsuite train --schemes $(TRAIN_SCHEMES) --activations $(TRAIN_ACTIVATIONS) \
		--depth $(TRAIN_DEPTH) --seeds $(TRAIN_SEEDS) --out $(RUN)/training --quiet
	$(TIME) training -- $(BIN)/initsuite report $(RUN)/study --tutorial $(RUN)/tutorial --training $(RUN)/training \
		$$(test -e $(RUN)/compare.md && echo --compare results/latest/study) --html
	@echo "== dynamics study (Jacobian spectra and gradients) -> $(RUN)/dynamics"
	$(TIME) dynamics -- $(BIN)/initsuite sweep --schemes $(DYNAMICS_SCHEMES) --activations linear,tanh,relu \
		--depths 4,16,64 --widths 256 --seeds 3 --jacobian --backward --no-timing \
		--out $(RUN)/dynamics --quiet
	$(TIME) dynamics -- $(BIN)/initsuite report $(RUN)/dynamics --html
	@echo "== isometry study (Jacobian spectra, orthogonal vs Gaussian) -> $(RUN)/isometry"
	$(TIME) isometry -- $(BIN)/initsuite reproduce isometry --out $(RUN)/isometry --quiet
	$(TIME) isometry -- $(BIN)/initsuite report $(RUN)/isometry --html
	@echo "== frameworks study (same model, different framework) -> $(RUN)/frameworks"
	$(TIME) frameworks -- $(BIN)/initsuite reproduce frameworks --laws $(FRAMEWORKS_LAWS) --out $(RUN)/frameworks --quiet
	$(TIME) frameworks -- $(BIN)/initsuite report $(RUN)/frameworks --html
	@echo "== architectures study (conv and residual nets) -> $(RUN)/archs"
	$(TIME) archs -- $(BIN)/initsuite sweep --schemes $(ARCH_SCHEMES) --activations relu,tanh --depths 10,50 \
		--widths 64 --seeds 2 --arch $(ARCH_ARCHS) --no-timing --out $(RUN)/archs --quiet
	$(TIME) archs -- $(BIN)/initsuite report $(RUN)/archs --html
	@echo "== zoo study (ResNet-50/18, ConvNeXt-T, ViT-S, GPT-2 and BERT depth sweeps) -> $(RUN)/zoo"
	$(TIME) zoo -- $(BIN)/initsuite reproduce zoo --out $(RUN)/zoo --quiet
	$(TIME) zoo -- $(BIN)/initsuite report $(RUN)/zoo --html
	@echo "== pytest-benchmark suite -> results/benchmarks"
	$(TIME) benchmarks -- $(BIN)/python -m pytest bench -q $(BENCH_ARGS) --benchmark-autosave \
		--benchmark-storage=file://results/benchmarks --benchmark-columns=median,iqr,ops,rounds \
		--benchmark-json=$(RUN)/benchmarks.json
	ln -sfn $(abspath $(RUN)) results/latest
	$(TIME) total --since $(BENCH_T0)
	@echo "report: $(RUN)/study/report.md (interactive: $(RUN)/study/report.html)"

reference: $(STAMP)
	test -e results/latest/study/report.md || (echo "run 'make bench' first" && exit 1)
	$(BIN)/initsuite report results/latest/study --tutorial results/latest/tutorial \
		--training results/latest/training --out results/reference
	$(BIN)/initsuite report results/latest/dynamics --out results/reference/dynamics
	$(BIN)/initsuite report results/latest/archs --out results/reference/archs
	$(BIN)/initsuite report results/latest/isometry --out results/reference/isometry
	$(BIN)/initsuite report results/latest/frameworks --out results/reference/frameworks
	$(BIN)/initsuite report results/latest/zoo --out results/reference/zoo
	$(BIN)/python bench/screenshot.py results/latest/study/report.html results/reference/report.png
	$(BIN)/python -m initsuite.results.figures results/latest results/reference/figures.json
	$(BIN)/python -m initsuite.report.prose results/reference/figures.json $(FIGURE_PAGES)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache site
