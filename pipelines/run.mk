# pipelines/run.mk: the generic DiffMM schedule as make rules; make's
# dependency graph is the pipeline.  Called by the top Makefile as
#   make -f pipelines/run.mk DATASET=tiktok [VARIANT=...] [EPOCHS=...] [PARAM=...]
# Every product is a file under runs/<dataset>/<run>/, written atomically by
# the stages, so a killed make continues from the first unfinished file.
#
# Per epoch e (0-based), with base.ts = convert-pkl DATA | build-graph:
#   e<e>/diffuse.ts  <- base.ts, e<e-1>/metrics.json (reads e<e-1>/diffuse.ts, train.ts)
#   e<e>/augment.ts  <- base.ts, e<e>/diffuse.ts
#   e<e>/train.ts    <- base.ts, e<e>/augment.ts (reads e<e-1>/train.ts)
#   e<e>/metrics.json <- evaluate (test, val) + the stages' logs
# Variants: diffmm (all of it), nodiff (no diffuse/augment: graph/ui stands
# in for the modality graphs), nocl (no contrastive loss), lightgcn (no
# features at all).  MODALITIES=image keeps only those feature files.

DATASET ?= demo
include pipelines/$(DATASET).mk
include pipelines/defaults.mk

VARIANT ?= diffmm
BIN     := bin
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

# the run folder: variant, seed and every parameter set on the command line
PARAMS     := LR BATCH REG LATDIM GNN_LAYER SSL_REG TEMP KEEP_RATE DIMS D_EMB_SIZE NORM STEPS NOISE_SCALE \
              NOISE_MIN NOISE_MAX SAMPLING_NOISE SAMPLING_STEPS REBUILD_K E_LOSS RIS_LAMBDA RIS_ADJ_LAMBDA TRANS \
              CL_METHOD MODALITIES DATA
OVERRIDDEN := $(foreach v,$(PARAMS),$(if $(filter command line,$(origin $(v))),$(v)))
empty      :=
space      := $(empty) $(empty)
slug        = $(shell printf '%s' '$(1)' | tr -c 'A-Za-z0-9.+\n' '-')
RUN        ?= $(VARIANT)-seed$(SEED)$(subst $(space),,$(foreach v,$(OVERRIDDEN),-$(call slug,$(shell echo $(v) | tr A-Z_ a-z-))$(call slug,$(notdir $($(v))))))
RUNS       ?= runs
R          := $(RUNS)/$(DATASET)/$(RUN)
LAST       := $(shell expr $(EPOCHS) - 1)
EPOCH_LIST := $(shell seq 0 $(LAST))

TRAIN_OPTS   = --seed $(SEED) --lr $(LR) --batch $(BATCH) --reg $(REG) --latdim $(LATDIM) --gnn-layer $(GNN_LAYER) \
               --ssl-reg $(SSL_REG) --temp $(TEMP) --ris-lambda $(RIS_LAMBDA) --ris-adj-lambda $(RIS_ADJ_LAMBDA) \
               --trans $(TRANS) --cl-method $(CL_METHOD)
DIFFUSE_OPTS = --seed $(SEED) --lr $(LR) --batch $(BATCH) --latdim $(LATDIM) --trans $(TRANS) --dims $(DIMS) \
               --d-emb-size $(D_EMB_SIZE) --norm $(NORM) --steps $(STEPS) --noise-scale $(NOISE_SCALE) \
               --noise-min $(NOISE_MIN) --noise-max $(NOISE_MAX) --e-loss $(E_LOSS)
AUGMENT_OPTS = --seed $(SEED) --keep-rate $(KEEP_RATE) --rebuild-k $(REBUILD_K) --sampling-steps $(SAMPLING_STEPS) \
               --sampling-noise $(SAMPLING_NOISE)

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
SOURCES := $(wildcard $(DATA)/trnMat.pkl $(DATA)/valMat.pkl $(DATA)/tstMat.pkl)
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
	@test -f "$(DATA)/trnMat.pkl" || { echo "run.mk: no $(DATA)/trnMat.pkl: set DATA to a dataset folder in the release's layout" >&2; exit 1; }
	@if [ -n "$(filter diffmm nocl nodiff,$(VARIANT))" ] && [ -z "$(MODS)" ]; then \
	    echo "run.mk: $(DATASET): no feature files (<modality>_feat.npy) in $(DATA): DiffMM needs item features." >&2; \
	    echo "run.mk: add them to $(DATA), or run the LightGCN baseline: make $(DATASET) VARIANT=lightgcn" >&2; exit 1; fi
	@mkdir -p $(@D)
	@cat $(INPUTS) | cksum > $(@D)/inputs.cksum.tmp && mv $(@D)/inputs.cksum.tmp $(@D)/inputs.cksum
	$(BIN)/convert-pkl -q $(SOURCES) $(foreach m,$(MODS),feat/$(m)=$(DATA)/$(m)_feat.npy) \
	    | $(BIN)/build-graph -q --pass -o $@

# ---- one epoch ----

define epoch_rules
ifeq ($(DIFFUSION),yes)
$(R)/e$(1)/diffuse.ts: $(R)/base.ts $(PREV_$(1))
	@mkdir -p $$(@D)
	$(BIN)/diffuse -q $(R)/base.ts $(if $(filter 0,$(1)),,$(R)/e$(2)/diffuse.ts $(R)/e$(2)/train.ts) \
	    $(DIFFUSE_OPTS) --zstd 0 --log $(R)/e$(1)/diffuse.log -o $$@
$(R)/e$(1)/augment.ts: $(R)/base.ts $(R)/e$(1)/diffuse.ts
	$(BIN)/augment -q $(R)/base.ts $(R)/e$(1)/diffuse.ts $(AUGMENT_OPTS) -o $$@
$(R)/e$(1)/train.ts: $(R)/base.ts $(R)/e$(1)/augment.ts
else
$(R)/e$(1)/train.ts: $(R)/base.ts $(PREV_$(1))
endif
	@mkdir -p $$(@D)
	$(BIN)/train -q $(R)/base.ts $(if $(DIFFUSION),$(R)/e$(1)/augment.ts) $(if $(filter 0,$(1)),,$(R)/e$(2)/train.ts) \
	    $(TRAIN_OPTS) -o $$@
$(R)/e$(1)/metrics.json: $(R)/base.ts $(R)/e$(1)/train.ts
	@pipelines/metrics.sh $(BIN) $(R) $(1) $(DIFFUSION) > $$@.tmp && mv $$@.tmp $$@
	@ls $(R)/e*/metrics.json | sort -t e -k2 -V | xargs cat > $(R)/metrics.jsonl.tmp && mv $(R)/metrics.jsonl.tmp $(R)/metrics.jsonl
	@for d in $(R)/e*/; do n=$$$${d%/}; n=$$$${n##*/e}; [ "$$$$n" -gt $(3) ] || rm -f $$$$d/diffuse.ts $$$$d/augment.ts $$$$d/train.ts; done
	@pipelines/summary.sh $$@ "$(DATASET) $(RUN)" --epochs
endef
# An epoch hangs on the previous one through its metrics.json, a file that
# stays, never through the previous state files: those are deleted two
# epochs later, and make re-walks missing intermediate files on every path
# that reaches them (2^epochs paths when each epoch had two links back).
# The recipes still read e<e-1>'s state, which exists whenever e<e> is due.
$(foreach e,$(EPOCH_LIST),$(eval PREV_$(e) := $(if $(filter 0,$(e)),,$(R)/e$(shell expr $(e) - 1)/metrics.json)))
$(foreach e,$(EPOCH_LIST),$(eval $(call epoch_rules,$(e),$(shell expr $(e) - 1),$(shell expr $(e) - 2))))

# per-epoch state is intermediate: removed after two epochs, never remade
.SECONDARY: $(foreach e,$(EPOCH_LIST),$(R)/e$(e)/diffuse.ts $(R)/e$(e)/augment.ts $(R)/e$(e)/train.ts)

# ---- the summary: best validation epoch (honest) and best test epoch (the release's protocol) ----

$(R)/summary.txt: $(foreach e,$(EPOCH_LIST),$(R)/e$(e)/metrics.json)
	@pipelines/summary.sh $(R)/metrics.jsonl "$(DATASET) $(RUN)" > $@.tmp && mv $@.tmp $@

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
	@awk 'function num(k, m) { if (match($$0, "\"" k "\": [-0-9.e+]+")) { m = substr($$0, RSTART, RLENGTH); sub(/.*: /, "", m); return m } return "NaN" } \
	    { print num("epoch"), num("test_recall@20"), num("val_recall@20"), num("train_loss") }' $(R)/metrics.jsonl > $(R)/curves.tsv
	@gnuplot -e "set terminal pngcairo size 900,500 noenhanced; set output '$@.tmp'; set title '$(DATASET) $(RUN)'; \
	    set xlabel 'epoch'; set ylabel 'Recall@20'; set y2label 'train loss'; set y2tics; set key bottom right; \
	    plot '$(R)/curves.tsv' using 1:2 with linespoints title 'test Recall@20', \
	         '' using 1:3 with linespoints title 'val Recall@20', '' using 1:4 axes x1y2 with lines title 'train loss'" \
	    && mv $@.tmp $@

# ---- ablation: every variant of this dataset, one table ----

ABLATIONS := diffmm nodiff nocl $(if $(filter-out 0 1,$(words $(ALL_MODS))),$(foreach m,$(ALL_MODS),only-$(m))) lightgcn
# Each variant runs under its own run-folder name (parameters set on the
# command line, MODALITIES included, are part of it), so an ablation with
# LR=... never reuses the default runs.  The table: runs/<dataset>/ablation-seed<S>[-overrides].md
ABLATION_MD = $(RUNS)/$(DATASET)/ablation-$(patsubst $(VARIANT)-%,%,$(RUN)).md
ablation:
	@rows=; for v in $(ABLATIONS); do \
	    case $$v in only-*) extra="VARIANT=diffmm MODALITIES=$${v#only-}" ;; *) extra="VARIANT=$$v" ;; esac; \
	    sub="$(MAKE) -s --no-print-directory -f pipelines/run.mk DATASET=$(DATASET) $$extra"; \
	    d=$$($$sub print-run) || exit 1; \
	    echo "ablation: $$v in $$d" >&2; \
	    $$sub run || exit 1; \
	    rows="$$rows$$(pipelines/summary.sh $$d/metrics.jsonl $$v --table)\n"; \
	done; \
	{ echo "| variant | best val epoch: test Recall@20 / NDCG@20 | best test epoch: Recall@20 / NDCG@20 | mean test Recall@20 |"; \
	  echo "|---|---|---|---|"; printf "$$rows"; } > $(ABLATION_MD).tmp && mv $(ABLATION_MD).tmp $(ABLATION_MD)
	@cat $(ABLATION_MD)
