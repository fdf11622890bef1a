# Workflows. Every target creates .venv and installs what it needs on first use, at the exact
# versions of the committed lock (requirements/lock-<machine>.txt: torch, torchvision, timm,
# jax, flax, keras, transformers and every test, bench and docs dependency). The package's own
# metadata (pyproject.toml) keeps ranges: users install into their own environments.
#
#   make test        run the test suite (tests/) on both cores (pytest-xdist), the browser
#                    checks included: headless Chromium is installed through apt where it is
#                    missing and this is root; elsewhere one line says so and the suite goes on
#   make test-portable  the suite again under torch's portable kernels
#                    (ATEN_CPU_CAPABILITY=default), in one process with 2 torch threads
#                    (.ci/run runs it after make test)
#   make test-latest the newest releases within the package's ranges in .venv-latest, and the
#                    live checks against jax, flax, keras, transformers, timm and torch; each
#                    library whose checks all pass is recorded in
#                    initsuite/core/checked_versions.json (not part of make test)
#   make lock        refresh the lock from those newest releases (a deliberate commit: the lock,
#                    the recorded versions and the scheme catalog that quotes them)
#   make bench       run the default study, the tutorial reproduction, the report and the
#                    pytest-benchmark suite; everything lands in results/. When an earlier
#                    run exists it compares the study with it (initsuite compare
#                    results/latest/study NEW --fail $(COMPARE_GATES) -> compare.md, plus a
#                    "Compared with" section in the report); a regression is reported and
#                    make goes on. The suite's JSON goes to $(RUN)/benchmarks.json; when the
#                    previous run stored one (results/latest/benchmarks.json) pytest-benchmark
#                    compares with it under $(BENCH_GATE) (a regression is reported, make goes
#                    on) and the report gets a "Benchmarks" section: ratios to each group's
#                    reference and to the previous run, rows past the gate marked
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
# `make bench BENCH_ARGS=` also measures the deep-memory run and the other long references (about 4 more
# minutes): without it their figures read "—" (pending) in the prose.
#
# GPU users: install into their own environment (pip install -e ".[test]" with their CUDA
# build of torch); the lock is the CPU machines' environment.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.initsuite-installed
# The lock of this machine's architecture (make lock writes it). torch and torchvision must
# come as a matching pair: on x86_64, 2.14.1 and 0.29.1 (a CUDA build that runs on the CPU);
# elsewhere pass LOCK_TORCH to make lock.
ARCH := $(shell uname -m)
LOCK ?= requirements/lock-$(ARCH).txt
LOCK_TORCH ?= torch==2.14.1 torchvision==0.29.1
LOCK_EXTRAS ?= test,bench,conventions,zoo
LATEST ?= .venv-latest
# The live checks: every test marked live(LIBRARY) (tests/live_record.py)
LIVE_TESTS ?= tests/test_frameworks_live.py tests/test_conventions_live.py \
	tests/test_delta_orthogonal.py tests/test_sources.py tests/test_parametrize_mup.py \
	tests/test_coordcheck.py tests/test_kernel_shaping_live.py tests/test_kernel_shaping_init.py
# pytest workers: one per core, each with one torch thread (tests/conftest.py)
TEST_WORKERS ?= 2
PYTEST_ARGS ?=

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
# The μTransfer reproduction (make bench): each seed trains 324 small models, about 2.5 minutes
MUTRANSFER_SEEDS ?= 1
# the kernel-shaping reproduction's small version: every net at depths 50 and 100, width 128
# (the study's own default is width 256, 500 steps: several times make bench's budget on 2 cores)
KSHAPING_FLAGS ?= --depths 50,100 --width 128 --seeds 3 --steps 100
# its sweep (about 50 s with the report): every scheme × activation, the classic pairs (ReLU
# with He's init, tanh with Xavier's at gain 5/3, SELU with LeCun's) among them
KSWEEP_SCHEMES ?= scaled_orthogonal,kaiming_normal,xavier_normal:gain=auto,lecun_normal
KSWEEP_ACTIVATIONS ?= dks:tanh:zeta=1.5,tat:leaky_relu:eta=0.9,relu,tanh,selu
# Gates of the comparison with the previous run (make bench): same seeds give the same numbers,
# so the cells' gates are tight; timings on a shared machine are not.
COMPARE_GATES ?= final_std:1%,divergence_layer:0,missing:0,init_ms:50%,forward_ms:50%
RUN ?= results/runs/$(shell date -u +%Y%m%dT%H%M%SZ)
# The benchmark suite's arguments (make bench): the long one-off references (conv/resmlp plain loops, the
# deep-memory run, the large grid; about 4 minutes) are left to `pytest bench`; BENCH_ARGS=
# runs everything
BENCH_ARGS ?= -m "not long_reference"
# Gate of the suite's comparison with the previous run (make bench), in pytest-benchmark's
# --benchmark-compare-fail syntax (STAT:P% or STAT:SECONDS): a median 25% slower is reported
# (pytest-benchmark's list, the report's "Benchmarks" section) and make goes on
BENCH_GATE ?= median:25%
# make bench times each step into $(RUN)/steps.json: `$(TIME) STEP -- COMMAND` runs COMMAND
# and appends its seconds to STEP; set-up and total count from when make read this file
BENCH_T0 := $(shell date +%s.%N)
TIME = $(BIN)/python -m initsuite.results.steps $(RUN)/steps.json
# the files make reference rewrites the marked figures of (initsuite.report.prose)
FIGURE_PAGES ?= README.md $(wildcard docs/*.md docs/guides/*.md)

.PHONY: test test-portable test-latest lock browser bench lint docs reference venv clean

venv: $(STAMP)

# The environment at the lock's versions; an architecture without a lock installs from the
# package's ranges (one line says so) until `make lock` is run there
$(STAMP): pyproject.toml $(wildcard $(LOCK))
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@if [ -f $(LOCK) ]; then \
		$(BIN)/python -m pip install --quiet -r $(LOCK) && \
		$(BIN)/python -m pip install --quiet --no-deps -e . ; \
	else \
		echo "no lock for $(ARCH) ($(LOCK)): installing from the package's ranges; run make lock"; \
		$(BIN)/python -m pip install --quiet --upgrade pip && \
		$(BIN)/python -m pip install --quiet -e ".[$(LOCK_EXTRAS)]" $(LOCK_TORCH) ; \
	fi
	$(BIN)/python -m pip check
	touch $(STAMP)

# headless Chromium for the browser checks (tests/test_report_html.py): through the machine's
# package manager where it is missing; where that cannot be done, one line, and make goes on
browser:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null \
		|| command -v google-chrome >/dev/null \
		|| { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
			&& { apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium; } \
			>/dev/null 2>&1; } \
		|| echo "headless Chromium could not be installed (apt-get install chromium, as root): the browser checks will skip"

test: $(STAMP) browser
	$(BIN)/python -m pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)

# one process with two torch threads: two workers of two threads each would put four OpenMP
# threads on two cores, where a small QR waits 15 ms for its sibling thread instead of 8 µs
test-portable: $(STAMP) browser
	ATEN_CPU_CAPABILITY=default INITSUITE_TEST_THREADS=2 $(BIN)/python -m pytest \
		-p no:xdist $(PYTEST_ARGS)

# The newest releases within the package's ranges (torch and torchvision: LOCK_TORCH's pair),
# in a venv made anew each time
test-latest:
	rm -rf $(LATEST)
	$(PYTHON) -m venv $(LATEST)
	$(LATEST)/bin/python -m pip install --quiet --upgrade pip
	$(LATEST)/bin/python -m pip install --quiet --upgrade --upgrade-strategy eager \
		-e ".[$(LOCK_EXTRAS)]" $(LOCK_TORCH)
	$(LATEST)/bin/python -m pip check
	$(LATEST)/bin/python -m pip list --format=freeze \
		| grep -iE '^(torch|torchvision|timm|jax|flax|keras|transformers)=='
	INITSUITE_RECORD_CHECKED=1 $(LATEST)/bin/python -m pytest -p no:xdist -q $(LIVE_TESTS)

lock: test-latest
	@mkdir -p $(dir $(LOCK))
	{ echo "# initsuite's locked environment for $(ARCH), Python $$($(LATEST)/bin/python -c 'import sys; print(*sys.version_info[:2], sep=".")'): make lock wrote it $$(date -u +%Y-%m-%d)"; \
	  echo "# from $(LOCK_TORCH) and .[$(LOCK_EXTRAS)]; make test installs it, then the package (--no-deps)"; \
	  $(LATEST)/bin/python -m pip freeze --all --exclude-editable; } > $(LOCK).tmp
	mv $(LOCK).tmp $(LOCK)
	@echo "wrote $(LOCK); commit it with initsuite/core/checked_versions.json and the scheme catalog"

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
	$(BIN)/python bench/env_cost.py $(VENV) $(LOCK) $(RUN)/environment.json
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
		--widths 64 --seeds 2 --archs $(ARCH_ARCHS) --no-timing --out $(RUN)/archs --quiet
	$(TIME) archs -- $(BIN)/initsuite report $(RUN)/archs --html
	@echo "== zoo study (ResNet-50/18, ConvNeXt-T, ViT-S, GPT-2 and BERT depth sweeps) -> $(RUN)/zoo"
	$(TIME) zoo -- $(BIN)/initsuite reproduce zoo --out $(RUN)/zoo --quiet
	$(TIME) zoo -- $(BIN)/initsuite report $(RUN)/zoo --html
	@echo "== coordinate checks (sp, mup on the MLP; sp, mup, depth_mup on the transformer over width and depth) -> $(RUN)/coordcheck, $(RUN)/coordcheck_transformer"
	$(TIME) coordcheck -- $(BIN)/initsuite coordcheck --model mlp --parametrizations sp,mup \
		--widths 64,256,1024 --steps 3 --seeds 2 --out $(RUN)/coordcheck --quiet
	$(TIME) coordcheck -- $(BIN)/initsuite report $(RUN)/coordcheck --html
	$(TIME) coordcheck -- $(BIN)/initsuite coordcheck --model transformer \
		--parametrizations sp,mup,depth_mup --widths 32,64,128 --depths 2,8 --steps 3 --seeds 2 \
		--out $(RUN)/coordcheck_transformer --quiet
	$(TIME) coordcheck -- $(BIN)/initsuite report $(RUN)/coordcheck_transformer --html
	@echo "== μTransfer (best learning rate across width and depth) -> $(RUN)/mutransfer"
	$(TIME) mutransfer -- $(BIN)/initsuite reproduce mutransfer --seeds $(MUTRANSFER_SEEDS) \
		--out $(RUN)/mutransfer --quiet
	$(TIME) mutransfer -- $(BIN)/initsuite report $(RUN)/mutransfer --html
	@echo "== kernel shaping (which deep vanilla MLPs train: ReLU/He, tanh/Xavier, DKS, TAT, Fixup) -> $(RUN)/kernel_shaping"
	$(TIME) kernel-shaping -- $(BIN)/initsuite reproduce kernel-shaping $(KSHAPING_FLAGS) \
		--out $(RUN)/kernel_shaping --quiet
	$(TIME) kernel-shaping -- $(BIN)/initsuite report $(RUN)/kernel_shaping --html
	@echo "== kernel-shaping sweep (std, pair cosine and their theory per layer at depths 50-1000: DKS, TAT, ReLU, tanh, SELU under SUO, He, Xavier, LeCun; q = 1 inputs) -> $(RUN)/kernel_sweep"
	$(TIME) kernel-shaping -- $(BIN)/initsuite sweep --schemes $(KSWEEP_SCHEMES) \
		--activations $(KSWEEP_ACTIVATIONS) --inputs normalized --depths 50,100,200,1000 \
		--widths 256 --seeds 3 --no-timing --out $(RUN)/kernel_sweep --quiet
	$(TIME) kernel-shaping -- $(BIN)/initsuite report $(RUN)/kernel_sweep --html
	@echo "== the network's c-map (output cosine against input cosine at depths 50-1000, width 256, measured beside the composed map: DKS, TAT, ReLU/He, tanh/Xavier, SELU/LeCun) -> $(RUN)/cmap"
	$(TIME) kernel-shaping -- $(BIN)/initsuite cmap --out $(RUN)/cmap --quiet
	$(TIME) kernel-shaping -- $(BIN)/initsuite report $(RUN)/cmap --html
	@echo "== pytest-benchmark suite -> results/benchmarks and $(RUN)/benchmarks.json, compared with the previous run (results/latest/benchmarks.json, if any; gate $(BENCH_GATE))"
	$(TIME) benchmarks -- $(BIN)/python -m pytest bench -q $(BENCH_ARGS) --benchmark-autosave \
		--benchmark-storage=file://results/benchmarks --benchmark-columns=median,iqr,ops,rounds \
		--benchmark-json=$(RUN)/benchmarks.json --bench-report-regressions \
		$$(test ! -e results/latest/benchmarks.json || echo \
		--benchmark-compare=results/latest/benchmarks.json --benchmark-compare-fail=$(BENCH_GATE))
	@echo "== the default study's report -> $(RUN)/study/report.md"
	$(TIME) report -- $(BIN)/initsuite report $(RUN)/study --tutorial $(RUN)/tutorial \
		--training $(RUN)/training \
		$$(test -e $(RUN)/compare.md && echo --compare results/latest/study) --html \
		$$(test ! -e $(RUN)/benchmarks.json || echo --benchmarks $(RUN)/benchmarks.json \
		--benchmark-gate $(BENCH_GATE)) $$(test ! -e results/latest/benchmarks.json || \
		echo --benchmarks-previous results/latest/benchmarks.json)
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
	$(BIN)/initsuite report results/latest/coordcheck --out results/reference/coordcheck
	$(BIN)/initsuite report results/latest/coordcheck_transformer \
		--out results/reference/coordcheck_transformer
	$(BIN)/initsuite report results/latest/mutransfer --out results/reference/mutransfer
	$(BIN)/initsuite report results/latest/kernel_shaping --out results/reference/kernel_shaping
	$(BIN)/initsuite report results/latest/kernel_sweep --out results/reference/kernel_sweep
	$(BIN)/initsuite report results/latest/cmap --out results/reference/cmap
	$(BIN)/python bench/screenshot.py results/latest/study/report.html results/reference/report.png
	$(BIN)/python -m initsuite.results.figures results/latest results/reference/figures.json
	$(BIN)/python -m initsuite.report.prose results/reference/figures.json $(FIGURE_PAGES)

clean:
	rm -rf $(VENV) $(LATEST) .pytest_cache .ruff_cache .mypy_cache site
