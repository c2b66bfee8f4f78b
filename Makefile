# Two commands do everything on a fresh machine:  make train   and   make test
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The CPU build of this release is what a machine without a GPU gets; on a CUDA machine PyPI's
# wheel of the same version is the CUDA build. Override with TORCH=... (for example TORCH=torch).
TORCH ?= torch==2.13.0
# Set-up by need: training and its tools install the package alone; tests and benchmarks add the dev
# set (Gradio, dlib, ONNX, Selenium, ...). EXTRAS=... installs other extras for `make setup`.
EXTRAS ?= dev
STAMP := $(VENV)/.installed-$(EXTRAS)
BASE := $(VENV)/.installed-base

RUN ?=
SWEEP ?=
TOP_K ?= 5
ARGS ?=

.PHONY: setup setup-base train test test-fast sweep report pretrained-report cpu-hour-plot leaderboard ensemble bench gpu-results gpu-bundle tensorboard clean-venv wheelhouse slurm-up slurm-down

setup: $(STAMP)

setup-base: $(BASE)

$(VENV)/.installed-%: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".$(if $(filter base,$*),,[$*])"
	touch $@

## Train the report's CNN on the built-in synthetic faces (extra Hydra overrides: ARGS="...").
train: setup-base
	$(BIN)/python -m fer_lightning.train experiment=quickstart $(ARGS)

## The whole test suite (CI runs exactly this).
test: setup
	$(BIN)/python -m pytest $(ARGS)

## Everything but the tests marked slow.
test-fast: setup
	$(BIN)/python -m pytest -m "not slow" $(ARGS)

## A sweep over the dropout peak and width variants (a Hydra multirun).
sweep: setup-base
	$(BIN)/python -m fer_lightning.train -m model.dropout=0.3,0.5,0.7 model/width=narrow,report $(ARGS)

## Every run of a sweep, best first (SWEEP=<multirun dir>; empty: the latest sweep).
leaderboard: setup-base
	$(BIN)/python -m fer_lightning.leaderboard $(SWEEP) $(ARGS)

## Average the TOP_K best runs of SWEEP (by validation accuracy) into SWEEP/ensemble.ckpt (+ .json);
## ARGS=--greedy adds runs only while validation accuracy improves (SWEEP/ensemble-greedy.ckpt).
ensemble: setup-base
	$(BIN)/python -m fer_lightning.ensemble $(SWEEP) --top-k $(TOP_K) $(ARGS)

## The HTML report of a finished run (RUN=outputs/runs/<name>/<overrides>): RUN/report/index.html + PNGs.
report: setup-base
	$(BIN)/python -m fer_lightning.report ckpt_path="$(RUN)" $(ARGS)

## The shipped report's CNN analysed on PublicTest, as docs/pretrained-report.md shows it (FER2013=<fer2013.csv.gz>).
FER2013 ?= ../shared/datasets/fer2013/fer2013.csv.gz
pretrained-report: setup-base
	$(BIN)/python -m fer_lightning.report ckpt_path=pretrained:fer2013-report-cnn data=fer2013 data.path="$(FER2013)" \
		output_dir=docs/pretrained embed_images=false $(ARGS)

## PublicTest accuracy against wall-clock minutes of the CPU-hour runs (RUNS="<run dir>=<label> ...").
cpu-hour-plot: setup-base
	$(BIN)/python -m fer_lightning.curves $(RUNS) --output docs/figures/cpu_hour.png --target 0.66 \
		--epoch-time median --title "FER2013 PublicTest, 2 CPU cores" $(ARGS)

## Speed benchmarks: prints the tables and writes benchmarks/results/<host>-<date>.json.
bench: setup
	$(BIN)/python -m benchmarks.run_all $(ARGS)

## The README's three GPU rows in one run on one GPU, in under 9 minutes (docs/benchmarks.md "GPU rows"):
## FER2013=<fer2013.csv.gz or its packed .npz>; ARGS=--dry-run does every stage on the CPU at tiny sizes.
gpu-results: setup-base
	$(BIN)/python -m benchmarks.gpu_results --data "$(FER2013)" $(ARGS)

## What a GPU machine with torch, Lightning and OpenCV but no package index lacks to run make gpu-results
## (all pure Python, so any Python 3): wheels in .gpu/wheels, beside FER2013 packed as WebP (48.6 MiB).
GPU_DIR ?= .gpu
gpu-bundle: setup-base
	$(BIN)/python -m pip wheel --quiet --no-deps --wheel-dir $(GPU_DIR)/wheels hydra-core==1.3.8 omegaconf==2.3.1 \
		antlr4-python3-runtime==4.9.3 submitit==1.5.4 hydra-submitit-launcher==1.2.0
	$(BIN)/python -m fer_lightning.pack data.path="$(FER2013)" output=$(GPU_DIR)/fer2013.npz encoding=webp
	@du -sh $(GPU_DIR)

## A one-node SLURM cluster on this machine (Debian's slurm-wlm and munge) to try hydra/launcher=slurm;
## then: eval "$$(scripts/local_slurm.sh env)" (docs/cluster.md "Try the cluster path on one machine").
slurm-up:
	scripts/local_slurm.sh up

slurm-down:
	scripts/local_slurm.sh down

tensorboard: setup-base
	$(BIN)/tensorboard --logdir outputs

## Every wheel the project needs, for machines without a package index (docs/cluster.md), built for
## this machine's platform and Python (run it where the nodes' Python runs): make wheelhouse WHEEL_EXTRAS=cluster
WHEELHOUSE ?= wheelhouse
WHEEL_EXTRAS ?= cluster
wheelhouse: setup
	$(BIN)/python -m pip wheel --quiet --wheel-dir $(WHEELHOUSE) "$(TORCH)" ".[$(WHEEL_EXTRAS)]"
	@echo "offline: python -m venv .venv && .venv/bin/pip install --no-index --find-links $(WHEELHOUSE) \"$(TORCH)\" \"fer-lightning[$(WHEEL_EXTRAS)]\""

clean-venv:
	rm -rf $(VENV)
