# Makefile: builds every stage into bin/, runs tests and benchmarks.
# `make` builds, `make test` runs the bats suites, `make bench` the
# throughput benchmarks.  Missing Debian packages are installed first.

CC       ?= gcc
OPT      ?= -O3
BLASDIR  := /usr/lib/x86_64-linux-gnu/openblas-openmp
BLASINC  := /usr/include/x86_64-linux-gnu/openblas-openmp
# -fno-trapping-math -fno-math-errno: we use neither FP traps nor errno, and
# both block the vectorisation of selects, conversions and sqrt.
CFLAGS   += $(OPT) -g -std=c11 -D_GNU_SOURCE -Wall -Wextra -fopenmp -fno-trapping-math -fno-math-errno -Icommon -I$(BLASINC)
# Debian 12's msgpack-c 4.x is pkg-config `msgpack` (libmsgpackc); newer
# releases call it `msgpack-c`.  Evaluated lazily, after the deps step.
MSGPACK_LIB = $(shell pkg-config --libs msgpack-c 2>/dev/null || pkg-config --libs msgpack 2>/dev/null || echo -lmsgpackc)
# The OpenMP build of OpenBLAS, by path and rpath: it shares gcc's OpenMP
# thread pool with our own loops (no oversubscription), and the reference
# libblas that Debian may also have installed can never be picked instead.
LDLIBS   += -L$(BLASDIR) -Wl,-rpath,$(BLASDIR) -lopenblas $(MSGPACK_LIB) -lzstd -lm -fopenmp

STAGES   := $(patsubst stages/%.c,%,$(wildcard stages/*.c))
BINS     := $(addprefix bin/,$(STAGES))
LIBSRC   := $(wildcard common/*.c)
LIBOBJ   := $(patsubst common/%.c,build/common/%.o,$(LIBSRC))
TOOLS    := $(patsubst tests/tools/%.c,build/tests/%,$(wildcard tests/tools/*.c))
DEPS_OK  := build/.deps-build

all: $(BINS) $(TOOLS)

$(DEPS_OK): scripts/deps.sh
	@mkdir -p build
	@scripts/deps.sh build
	@touch $@

build/common/%.o: common/%.c | $(DEPS_OK)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

# the unpacked 64-wide products are written as a*b+c: let gcc fuse them
# into FMA instructions (ISO C mode leaves them apart), as OpenBLAS does
build/common/dense_n64.o: CFLAGS += -ffp-contract=fast
$(LIBOBJ): Makefile

build/libdiffmm.a: $(LIBOBJ)
	ar rcs $@ $^

build/stages/%.o: stages/%.c | $(DEPS_OK)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

# linked under a temporary name and renamed: a pipeline running while you
# rebuild never executes a half-written binary
bin/%: build/stages/%.o build/libdiffmm.a
	@mkdir -p bin
	$(CC) -o $@.tmp $^ $(LDLIBS) && mv -f $@.tmp $@

build/tests/%: tests/tools/%.c build/libdiffmm.a | $(DEPS_OK)
	@mkdir -p build/tests
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

test: all
	@scripts/deps.sh test
	@tests/run

bench: all
	@scripts/deps.sh test
	@tests/bench/run

clean:
	rm -rf build bin

# ---- pipelines (pipelines/run.mk): `make tiktok`, `make baby VARIANT=lightgcn`, ... ----

RUNMK := $(MAKE) --no-print-directory -f pipelines/run.mk

tiktok baby sports: all
	+@$(RUNMK) DATASET=$@ run

# The main job on data the project makes itself: a synthetic dataset with
# planted topics that the item features reveal, DiffMM and the LightGCN
# baseline side by side.
DEMO_DATA := runs/demo-data
# Progress: one line per epoch as it finishes (the recipes' own lines, the
# commands themselves silenced by -s) and, on a terminal, each stage's live
# progress line on stderr.
demo: all
	@scripts/deps.sh test
	@mkdir -p $(DEMO_DATA)
	@test -f $(DEMO_DATA)/trnMat.pkl || { echo "demo: writing a synthetic dataset to $(DEMO_DATA)"; \
	    /usr/bin/python3 examples/make_synthetic.py $(DEMO_DATA) \
	    --users 3000 --items 4000 --per-user 8 --topics 30 --popularity 0 > $(DEMO_DATA).txt; }
	@echo "demo: DiffMM, then LightGCN, $$($(RUNMK) DATASET=demo print-epochs) epochs each, in $$($(RUNMK) DATASET=demo print-run)"
	@$(RUNMK) -s DATASET=demo epochs
	@$(RUNMK) -s DATASET=demo VARIANT=lightgcn epochs
	@echo "== demo: $$(cat $(DEMO_DATA).txt 2>/dev/null || echo synthetic data), $$($(RUNMK) DATASET=demo print-epochs) epochs"
	@$(RUNMK) DATASET=demo summary
	@$(RUNMK) DATASET=demo VARIANT=lightgcn summary

# make plot [DATASET=tiktok] [VARIANT=...] [SEED=...]: the run's curves to a PNG
plot: all
	@scripts/deps.sh plot
	@$(RUNMK) DATASET=$(or $(DATASET),demo) plot

# make ablation-tiktok: DiffMM, no diffusion graphs, no contrastive loss, each
# single modality, and LightGCN, then one table of their summaries
ablation-%: all
	+@$(RUNMK) DATASET=$* ablation

.PHONY: all test bench clean tiktok baby sports demo plot
.SECONDARY:
-include $(LIBOBJ:.o=.d) $(patsubst stages/%.c,build/stages/%.d,$(wildcard stages/*.c))
