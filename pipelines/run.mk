# pipelines/run.mk: the generic DiffMM schedule as make rules; make's
# dependency graph is the pipeline.  Called by the top Makefile as
#   make -f pipelines/run.mk DATASET=tiktok [VARIANT=...] [EPOCHS=...] [PARAM=...]
# Every product is a file under runs/<dataset>/<run>/, written atomically by
# the stages, so a killed make continues from the first unfinished file.
#
# Per epoch e (0-based), with base.ts = convert-pkl DATA | build-graph:
#   e<e>/diffuse.ts   <- base.ts, epoch e-1 done (reads e<e-1>/diffuse.ts, train.ts)
#   e<e>/augment.ts   <- base.ts, e<e>/diffuse.ts
#   e<e>/train.ts     <- base.ts, e<e>/augment.ts, epoch e-1 done (reads e<e-1>/train.ts)
#   e<e>/eval.json    <- evaluate e<e>/train.ts on test (and val): a line each
#   e<e>/metrics.json <- eval.json and the stages' logs, joined
#   e<e>/listed, pruned: metrics.jsonl updated, state before e-1 removed
# Variants: diffmm (all of it), nodiff (no diffuse/augment: graph/ui stands
# in for the modality graphs), nocl (no contrastive loss), simgraph
# (feature-graph in place of diffuse | augment: the modality graphs from
# feature similarity), lightgcn (no features at all).  MODALITIES=image
# keeps only those feature files.
# SHARDS=n splits each epoch's augment into n jobs (augment --shard i/n,
# then augment --merge): the same bytes as one augment, so the run folder
# does not change with it.

MAKEFLAGS += --no-builtin-rules
# PIPE: this folder (pipelines/ here, share/diffmm/pipelines installed), so
# the recipes run from any folder: make -f PATH/run.mk, or `diffmm run`
PIPE    := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
# the dataset's settings file: DATASET=name, or DATA's own name when this
# folder has a file for it, else generic.mk (the release's defaults alone)
DATA_NAME := $(notdir $(patsubst %/,%,$(DATA)))
DATASET ?= $(if $(DATA),$(if $(wildcard $(PIPE)/$(DATA_NAME).mk),$(DATA_NAME),generic),demo)
ifeq ($(wildcard $(PIPE)/$(DATASET).mk),)
$(error DATASET=$(DATASET): no $(PIPE)/$(DATASET).mk (datasets: $(basename $(notdir $(filter-out %/defaults.mk %/run.mk %/sweep.mk,$(wildcard $(PIPE)/*.mk))))))
endif
include $(PIPE)/$(DATASET).mk
include $(PIPE)/defaults.mk

VARIANT ?= diffmm
# the stages: bin/ in the repository; `diffmm run` passes its libexec folder
# as BIN=... (only the command line counts: a BIN in the environment does not)
ifneq ($(origin BIN),command line)
BIN     := bin
endif
# SUBMIT: a prefix for every stage command, e.g. SUBMIT='srun --cpus-per-task=2'
SUBMIT  ?=
comma   := ,

# modality feature files: all in DATA, or those MODALITIES names ("none": no features)
ALL_MODS := $(patsubst $(DATA)/%_feat.npy,%,$(wildcard $(DATA)/*_feat.npy))
MODS     := $(if $(MODALITIES),$(filter-out none,$(subst $(comma), ,$(MODALITIES))),$(ALL_MODS))
ifeq ($(VARIANT),lightgcn)
MODS     :=
endif
ifeq ($(VARIANT),nocl)
SSL_REG  := 0
endif
DIFFUSION := $(if $(filter diffmm nocl,$(VARIANT)),yes,)
SIMGRAPH  := $(if $(filter simgraph,$(VARIANT)),yes,)
GRAPHS    := $(DIFFUSION)$(SIMGRAPH)
SHARDS    ?= 1
ifeq ($(filter diffmm nodiff nocl simgraph lightgcn,$(VARIANT)),)
$(error VARIANT=$(VARIANT): not one of diffmm nodiff nocl simgraph lightgcn)
endif
ifeq ($(shell [ "$(SHARDS)" -ge 1 ] 2>/dev/null && echo ok),)
$(error SHARDS=$(SHARDS): must be a whole number of jobs, 1 or more)
endif

# the run folder: variant, seed and every parameter set on the command line
PARAMS     := LR BATCH REG LATDIM GNN_LAYER SSL_REG TEMP KEEP_RATE DIMS D_EMB_SIZE NORM STEPS NOISE_SCALE \
              NOISE_MIN NOISE_MAX SAMPLING_NOISE SAMPLING_STEPS REBUILD_K E_LOSS RIS_LAMBDA RIS_ADJ_LAMBDA TRANS \
              CL_METHOD MODALITIES PRECISION AUGMENT_BATCH DATA
OVERRIDDEN := $(foreach v,$(PARAMS),$(if $(filter command line,$(origin $(v))),$(v)))
empty      :=
space      := $(empty) $(empty)
slug        = $(shell printf '%s' '$(1)' | tr -c 'A-Za-z0-9.+\n' '-')
# (made once: a recursive RUN ran its shells on every use, three times an epoch)
ifeq ($(origin RUN),undefined)
RUN        := $(VARIANT)-seed$(SEED)$(subst $(space),,$(foreach v,$(OVERRIDDEN),-$(call slug,$(shell echo $(v) | tr A-Z_ a-z-))$(call slug,$(notdir $($(v))))))
endif
RUNS       ?= runs
R          := $(RUNS)/$(DATASET)/$(RUN)
LAST       := $(shell expr $(EPOCHS) - 1)
EPOCH_LIST := $(shell seq 0 $(LAST))

TRAIN_OPTS   = --seed $(SEED) --lr $(LR) --batch $(BATCH) --reg $(REG) --latdim $(LATDIM) --gnn-layer $(GNN_LAYER) \
               --ssl-reg $(SSL_REG) --temp $(TEMP) --ris-lambda $(RIS_LAMBDA) --ris-adj-lambda $(RIS_ADJ_LAMBDA) \
               --trans $(TRANS) --cl-method $(CL_METHOD) --precision $(PRECISION)
DIFFUSE_OPTS = --seed $(SEED) --lr $(LR) --batch $(BATCH) --latdim $(LATDIM) --trans $(TRANS) --dims $(DIMS) \
               --d-emb-size $(D_EMB_SIZE) --norm $(NORM) --steps $(STEPS) --noise-scale $(NOISE_SCALE) \
               --noise-min $(NOISE_MIN) --noise-max $(NOISE_MAX) --e-loss $(E_LOSS) \
               --precision $(PRECISION)
AUGMENT_OPTS = --seed $(SEED) --keep-rate $(KEEP_RATE) --rebuild-k $(REBUILD_K) --sampling-steps $(SAMPLING_STEPS) \
               --sampling-noise $(SAMPLING_NOISE) --precision $(PRECISION) --batch $(AUGMENT_BATCH)

.PHONY: run epochs summary
run: $(R)/summary.txt
	@cat $<

# every epoch and the summary file, without printing the summary
epochs: $(R)/summary.txt

# ---- data ----

# The data files are order-only prerequisites: a copy of the same data with
# new times (a fresh checkout, a re-mounted share) must not restart a
# 50-epoch run.  Their content is what counts: making base.ts records a
# checksum of them in inputs.cksum, and a run whose data changed since
# then stops with a message.  The checksum is written before base.ts, so a
# base.ts never exists without it (a run killed between the two has no
# base.ts yet and makes both again); a base.ts without one is refused.
# FORMAT: pkl (the release's trnMat.pkl, valMat.pkl, tstMat.pkl) or mmrec
# (MMRec's <name>.inter); by default whichever DATA holds
FORMAT  ?= $(if $(wildcard $(DATA)/trnMat.pkl),pkl,$(if $(wildcard $(DATA)/*.inter),mmrec,pkl))
ifeq ($(FORMAT),mmrec)
SOURCES := $(wildcard $(DATA)/*.inter)
CONVERT  = $(BIN)/convert-mmrec -q $(DATA) $(if $(MODS),$(foreach m,$(MODS),$(DATA)/$(m)_feat.npy),--no-features)
else ifeq ($(FORMAT),pkl)
SOURCES := $(wildcard $(DATA)/trnMat.pkl $(DATA)/valMat.pkl $(DATA)/tstMat.pkl)
CONVERT  = $(BIN)/convert-pkl -q $(SOURCES) $(foreach m,$(MODS),feat/$(m)=$(DATA)/$(m)_feat.npy)
else
$(error FORMAT=$(FORMAT): pkl (the release's pickles) or mmrec (MMRec's .inter))
endif
INPUTS  := $(SOURCES) $(foreach m,$(MODS),$(DATA)/$(m)_feat.npy)
ifneq ($(wildcard $(R)/base.ts),)
ifeq ($(wildcard $(R)/inputs.cksum),)
$(error $(R)/base.ts has no inputs.cksum beside it, so its data cannot be checked; remove the folder, or use RUN=<new name>)
endif
ifneq ($(shell cat $(INPUTS) 2>/dev/null | cksum),$(shell cat $(R)/inputs.cksum))
$(error $(R) was made from other data than $(DATA) holds now; remove the folder, or use RUN=<new name>)
endif
endif
$(R)/base.ts: | $(INPUTS)
	@test -n "$(SOURCES)" || { echo "run.mk: no $(if $(filter mmrec,$(FORMAT)),<name>.inter,trnMat.pkl) in $(DATA): set DATA to a dataset folder in the release's layout or MMRec's (FORMAT=mmrec)" >&2; exit 1; }
	@if [ -n "$(filter diffmm nocl nodiff simgraph,$(VARIANT))" ] && [ -z "$(MODS)" ]; then \
	    echo "run.mk: $(DATASET): no feature files (<modality>_feat.npy) in $(DATA): DiffMM needs item features." >&2; \
	    echo "run.mk: add them to $(DATA), or run the LightGCN baseline: make $(DATASET) VARIANT=lightgcn" >&2; exit 1; fi
	@mkdir -p $(@D)
	@cat $(INPUTS) | cksum > $(@D)/inputs.cksum.tmp && mv $(@D)/inputs.cksum.tmp $(@D)/inputs.cksum
	$(CONVERT) | $(BIN)/build-graph -q --pass -o $@

# ---- one epoch e: diffuse, augment, train, evaluate ----
# In each rule the stem $* is the epoch number e.  Epoch e reads the state
# of epoch e-1 (prev_state), and waits for that epoch to be finished
# (prev_done: its metrics listed, older state pruned).  It never waits on
# e-1's state files themselves: those are deleted two epochs later, and make
# re-walks missing intermediate files on every path that reaches them
# (2^epochs paths when each epoch had two links back).
HAS_VAL    := $(if $(filter mmrec,$(FORMAT)),yes,$(wildcard $(DATA)/valMat.pkl))
$(foreach e,$(EPOCH_LIST),$(eval PREV_$(e) := $(if $(filter 0,$(e)),,$(shell expr $(e) - 1))))
$(foreach e,$(EPOCH_LIST),$(eval PREV2_$(e) := $(if $(filter 0 1,$(e)),,$(shell expr $(e) - 2))))
prev_state  = $(if $(PREV_$(1)),$(R)/e$(PREV_$(1))/$(2))
# Epoch e's state is written over the pages of epoch e-2's (--reuse), which
# nothing reads any more and the prune after epoch e would delete: on these
# VMs new page cache costs 0.3-0.6 s for diffuse's 322 MB (docs/NOTES.md)
reuse_state = $(if $(PREV2_$(1)),--reuse $(R)/e$(PREV2_$(1))/$(2))
prev_done   = $(if $(PREV_$(1)),$(R)/e$(PREV_$(1))/listed $(R)/e$(PREV_$(1))/pruned)
.SECONDEXPANSION:

$(R)/e%/diffuse.ts: $(R)/base.ts $$(call prev_done,$$*)
	@mkdir -p $(@D)
	$(SUBMIT) $(BIN)/diffuse -q $(R)/base.ts $(call prev_state,$*,diffuse.ts) $(call prev_state,$*,train.ts) \
	    $(DIFFUSE_OPTS) --zstd 0 --log $(@D)/diffuse.log $(call reuse_state,$*,diffuse.ts) -o $@

ifneq ($(SIMGRAPH),)
# the similarity-graph variant: no denoisers, the graphs from the features
$(R)/e%/augment.ts: $(R)/base.ts $$(call prev_done,$$*)
	@mkdir -p $(@D)
	$(SUBMIT) $(BIN)/feature-graph -q $(R)/base.ts --epoch $* --seed $(SEED) --keep-rate $(KEEP_RATE) \
	    --rebuild-k $(REBUILD_K) -o $@
else ifeq ($(SHARDS),1)
$(R)/e%/augment.ts: $(R)/base.ts $(R)/e%/diffuse.ts
	$(SUBMIT) $(BIN)/augment -q $(R)/base.ts $(@D)/diffuse.ts $(AUGMENT_OPTS) -o $@
else
# one job per shard of users, then the merge into the same graph records
SHARD_LIST  := $(shell seq 0 $$(($(SHARDS) - 1)))
shard_files  = $(foreach i,$(SHARD_LIST),$(1)/augment-$(i)of$(SHARDS).ts)
define shard_rule
$(R)/e%/augment-$(1)of$(SHARDS).ts: $(R)/base.ts $(R)/e%/diffuse.ts
	$$(SUBMIT) $(BIN)/augment -q $(R)/base.ts $$(@D)/diffuse.ts $(AUGMENT_OPTS) --shard $(1)/$(SHARDS) --zstd 0 -o $$@
endef
$(foreach i,$(SHARD_LIST),$(eval $(call shard_rule,$(i))))
$(R)/e%/augment.ts: $(R)/base.ts $$(call shard_files,$(R)/e$$*)
	$(SUBMIT) $(BIN)/augment -q --merge $(R)/base.ts $(call shard_files,$(@D)) $(AUGMENT_OPTS) -o $@
endif

# raw (--zstd 0): its floats compress by 8%, and zstd costs about 0.02 s on
# its write and on each of its three reads (evaluate, next train, next diffuse)
$(R)/e%/train.ts: $(R)/base.ts $(if $(GRAPHS),$(R)/e%/augment.ts) $$(call prev_done,$$*)
	@mkdir -p $(@D)
	$(SUBMIT) $(BIN)/train -q $(R)/base.ts $(if $(GRAPHS),$(@D)/augment.ts) $(call prev_state,$*,train.ts) \
	    $(TRAIN_OPTS) --zstd 0 $(call reuse_state,$*,train.ts) -o $@

# both splits from one evaluate: one process, one read of the embeddings
$(R)/e%/eval.json: $(R)/base.ts $(R)/e%/train.ts
	$(SUBMIT) $(BIN)/evaluate -q $(R)/base.ts $(@D)/train.ts --split test$(if $(HAS_VAL),$(comma)val) --log $(@D)/evaluate.log > $@.tmp && mv $@.tmp $@

# the epoch's line of metrics.jsonl: both evaluations and the stages' logs
$(R)/e%/metrics.json: $(R)/e%/eval.json
	@$(PIPE)/metrics.sh $(BIN) $(@D) $(if $(DIFFUSION),diffusion,$(if $(SIMGRAPH),simgraph)) > $@.tmp && mv $@.tmp $@
	@$(PIPE)/summary.sh $@ "$(DATASET) $(RUN)" --epochs

# ---- after epoch e: metrics.jsonl lists epochs 0..e, older state goes ----

$(R)/e%/listed: $(R)/e%/metrics.json
	@for n in $$(seq 0 $*); do cat $(R)/e$$n/metrics.json; done > $(R)/metrics.jsonl.tmp && mv $(R)/metrics.jsonl.tmp $(R)/metrics.jsonl
	@touch $@

# the large state of every epoch before e-1 (e's successor still reads e)
$(R)/e%/pruned: $(R)/e%/metrics.json
	@for d in $(R)/e*/; do n=$${d%/}; n=$${n##*/e}; [ "$$n" -ge $$(($* - 1)) ] || rm -f $$d/diffuse.ts $$d/augment*.ts $$d/train.ts; done
	@touch $@

# An epoch's files are intermediate (made by the pattern rules above): kept
# (never deleted by make), and never remade once the stamps after them
# exist.  The stamps themselves are named by the summary's rule, so a
# missing one is always made.  (An empty .SECONDARY would make every target
# intermediate, the stamps too, and a longer run would find nothing to do.)
.SECONDARY: $(foreach e,$(EPOCH_LIST),$(foreach f,diffuse.ts augment.ts train.ts eval.json metrics.json,$(R)/e$(e)/$(f)) \
             $(if $(filter-out 1,$(SHARDS)),$(call shard_files,$(R)/e$(e))))

# ---- the summary: best validation epoch (honest) and best test epoch (the release's protocol) ----

$(R)/summary.txt: $(foreach e,$(EPOCH_LIST),$(R)/e$(e)/listed $(R)/e$(e)/pruned)
	@$(PIPE)/summary.sh $(R)/metrics.jsonl "$(DATASET) $(RUN)" > $@.tmp && mv $@.tmp $@

summary:
	@cat $(R)/summary.txt

print-run:
	@echo $(R)

print-epochs:
	@echo $(EPOCHS)

# ---- plot: test and validation Recall@20 and the losses per epoch ----

plot: $(R)/curves.png
	@echo "$(R)/curves.png"
$(R)/curves.png: $(R)/summary.txt
	@$(PIPE)/summary.sh $(R)/metrics.jsonl "" --curves > $(R)/curves.tsv
	@gnuplot -e "set terminal pngcairo size 900,500 noenhanced; set output '$@.tmp'; set title '$(DATASET) $(RUN)'; \
	    set xlabel 'epoch'; set ylabel 'Recall@20'; set y2label 'train loss'; set y2tics; set key bottom right; \
	    plot '$(R)/curves.tsv' using 1:2 with linespoints title 'test Recall@20', \
	         '' using 1:3 with linespoints title 'val Recall@20', '' using 1:4 axes x1y2 with lines title 'train loss'" \
	    && mv $@.tmp $@

# ---- ablation: every variant of this dataset, one table ----

ABLATIONS := diffmm nodiff nocl simgraph $(if $(filter-out 0 1,$(words $(ALL_MODS))),$(foreach m,$(ALL_MODS),only-$(m))) lightgcn
# Each variant runs under its own run-folder name (parameters set on the
# command line, MODALITIES included, are part of it), so an ablation with
# LR=... never reuses the default runs.  The table: runs/<dataset>/ablation-seed<S>[-overrides].md
ABLATION_MD = $(RUNS)/$(DATASET)/ablation-$(patsubst $(VARIANT)-%,%,$(RUN)).md
ablation:
	@rows=; for v in $(ABLATIONS); do \
	    case $$v in only-*) extra="VARIANT=diffmm MODALITIES=$${v#only-}" ;; *) extra="VARIANT=$$v" ;; esac; \
	    sub="$(MAKE) -s --no-print-directory -f $(PIPE)/run.mk DATASET=$(DATASET) $$extra"; \
	    d=$$($$sub print-run) || exit 1; \
	    echo "ablation: $$v in $$d" >&2; \
	    $$sub run || exit 1; \
	    rows="$$rows$$($(PIPE)/summary.sh $$d/metrics.jsonl $$v --table)\n"; \
	done; \
	{ echo "| variant | best val epoch: test Recall@20 / NDCG@20 | best test epoch: Recall@20 / NDCG@20 | mean test Recall@20 |"; \
	  echo "|---|---|---|---|"; printf "$$rows"; } > $(ABLATION_MD).tmp && mv $(ABLATION_MD).tmp $(ABLATION_MD)
	@cat $(ABLATION_MD)
