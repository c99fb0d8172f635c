# pipelines/sweep.mk: a grid of runs, datasets x variants x seeds, every run
# its own target so that `make -j` (and a SUBMIT prefix such as
# SUBMIT='srun --cpus-per-task=2') spreads them; then one table per dataset
# (pipelines/sweep.sh): each variant's figures as mean +- sd over seeds.
# Called by the top Makefile:
#   make sweep DATASET=tiktok SEEDS='421 7 1' VARIANTS='diffmm nodiff nocl only-image simgraph lightgcn' [NAME=value...]
# Each run is pipelines/run.mk with DATASET, VARIANT (only-<m>: diffmm with
# MODALITIES=<m>) and SEED; every other NAME=value of the command line
# reaches it too, and so names its run folder, as if it were run alone.
# `make -n sweep` lists the runs' commands without running them.

MAKEFLAGS += --no-builtin-rules
PIPE     := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
DATASET  ?= demo
DATASETS ?= $(DATASET)
SEEDS    ?= 421
VARIANTS ?= diffmm
RUNS     ?= runs

# make -n: print each run's command instead of running it (no recursion)
DRYRUN  := $(findstring n,$(firstword -$(MAKEFLAGS)))
PLUS    := $(if $(DRYRUN),,+)
RUNMAKE  = $(if $(DRYRUN),make --no-print-directory -f $(PIPE)/run.mk $(MAKEOVERRIDES),$(MAKE) --no-print-directory -f $(PIPE)/run.mk)

RUN_TARGETS := $(foreach d,$(DATASETS),$(foreach v,$(VARIANTS),$(foreach s,$(SEEDS),sweep/$(d)/$(v)/$(s))))
TABLES      := $(foreach d,$(DATASETS),table/$(d))
variant_args = $(if $(filter only-%,$(1)),VARIANT=diffmm MODALITIES=$(patsubst only-%,%,$(1)),VARIANT=$(1))
part         = $(word $(2),$(subst /, ,$(1)))

.PHONY: sweep $(RUN_TARGETS) $(TABLES)
sweep: $(TABLES)

$(RUN_TARGETS): sweep/%:
	$(PLUS)$(RUNMAKE) -s DATASET=$(call part,$*,1) $(call variant_args,$(call part,$*,2)) SEED=$(call part,$*,3) epochs

$(foreach d,$(DATASETS),$(eval table/$(d): $(filter sweep/$(d)/%,$(RUN_TARGETS))))
$(TABLES): table/%:
	$(PLUS)@$(PIPE)/sweep.sh $* "$(VARIANTS)" "$(SEEDS)" $(RUNS)
