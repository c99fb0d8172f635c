# Makefile: builds every stage into bin/, runs tests and benchmarks.
# `make` builds, `make test` runs the bats suites (with the sanitizer build
# and the fuzz harnesses), `make bench` the throughput benchmarks, `make fuzz`
# the fuzz harnesses for longer.  Missing Debian packages are installed first.

CC       ?= gcc
OPT      ?= -O3
# `make SANITIZE=1`: the same stages and test tools built with AddressSanitizer
# and UndefinedBehaviorSanitizer (gcc's runtimes; any report stops the
# program), into build-san/ and bin-san/ so the two builds never mix.
# `make test` builds it and runs the reader suites against it (tests/run).
ifeq ($(SANITIZE),1)
OPT      := -O1
SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
CFLAGS   += $(SANFLAGS)
LDFLAGS  += $(SANFLAGS)
B        := build-san
BINDIR   := bin-san
else
B        := build
BINDIR   := bin
endif
BLASDIR  := /usr/lib/x86_64-linux-gnu/openblas-openmp
BLASINC  := /usr/include/x86_64-linux-gnu/openblas-openmp
# -fno-trapping-math -fno-math-errno: we use neither FP traps nor errno, and
# both block the vectorisation of selects, conversions and sqrt.
CFLAGS   += $(OPT) -g -std=c11 -D_GNU_SOURCE -Wall -Wextra -fopenmp -fno-trapping-math -fno-math-errno -Icommon -Istages -I$(BLASINC)
# Debian 12's msgpack-c 4.x is pkg-config `msgpack` (libmsgpackc); newer
# releases call it `msgpack-c`.  Evaluated lazily, after the deps step.
MSGPACK_LIB = $(shell pkg-config --libs msgpack-c 2>/dev/null || pkg-config --libs msgpack 2>/dev/null || echo -lmsgpackc)
# The OpenMP build of OpenBLAS, by path and rpath: it shares gcc's OpenMP
# thread pool with our own loops (no oversubscription), and the reference
# libblas that Debian may also have installed can never be picked instead.
LDLIBS   += -L$(BLASDIR) -Wl,-rpath,$(BLASDIR) -lopenblas -ldnnl $(MSGPACK_LIB) -lzstd -lm -fopenmp

STAGES   := $(patsubst stages/%.c,%,$(wildcard stages/*.c))
BINS     := $(addprefix $(BINDIR)/,$(STAGES))
# the library's three floors: common/io (streams and file formats),
# common/kernels (numerical kernels, may use io), common/model (the two
# models, may use both); stages/cli is the frame the stages run in
LIBSRC   := $(wildcard common/io/*.c common/kernels/*.c common/model/*.c)
LIBOBJ   := $(patsubst common/%.c,$(B)/common/%.o,$(LIBSRC))
CLIOBJ   := $(patsubst stages/cli/%.c,$(B)/stages/cli/%.o,$(wildcard stages/cli/*.c))
TOOLS    := $(patsubst tests/tools/%.c,$(B)/tests/%,$(wildcard tests/tools/*.c))
DEPS_OK  := build/.deps-build

all: $(BINS) $(TOOLS) $(BINDIR)/diffmm

# ---- diffmm, the one command in front of the stages (scripts/diffmm.in) ----
VERSION := $(shell git describe --always --dirty 2>/dev/null || echo unknown)
$(BINDIR)/diffmm: scripts/diffmm.in $(wildcard .git/HEAD .git/index)
	@mkdir -p $(BINDIR)
	sed 's|@VERSION@|$(VERSION)|' $< > $@.tmp && chmod +x $@.tmp && mv -f $@.tmp $@

# man pages from each stage's -h (scripts/man.sh), and diffmm(1)
MANPAGES := $(patsubst %,build/man/diffmm-%.1,$(STAGES)) build/man/diffmm.1
build/man/diffmm-%.1: $(BINDIR)/% scripts/man.sh
	@mkdir -p build/man
	scripts/man.sh $< $(VERSION) > $@.tmp && mv $@.tmp $@
build/man/diffmm.1: scripts/diffmm.1.in
	@mkdir -p build/man
	sed 's|@VERSION@|$(VERSION)|' $< > $@

# make install [PREFIX=/usr/local] [DESTDIR=...]: diffmm in bin/, the stages
# in libexec/diffmm/, the recipes in share/diffmm/pipelines/, man pages,
# bash completion, and a list of every file written (share/diffmm/installed)
# that `make uninstall` removes, and nothing else.
PREFIX  ?= /usr/local
DEST    := $(DESTDIR)$(PREFIX)
PIPES   := $(wildcard pipelines/*.mk pipelines/*.sh)
install: all $(MANPAGES)
	@set -e; d="$(DEST)"; \
	install -d "$$d/bin" "$$d/libexec/diffmm" "$$d/share/diffmm/pipelines" "$$d/share/man/man1" \
	    "$$d/share/bash-completion/completions"; \
	list="bin/diffmm"; install -m 755 $(BINDIR)/diffmm "$$d/bin/diffmm"; \
	for s in $(STAGES); do install -m 755 $(BINDIR)/$$s "$$d/libexec/diffmm/$$s"; list="$$list libexec/diffmm/$$s"; done; \
	for f in $(PIPES); do install -m $$(test -x $$f && echo 755 || echo 644) $$f "$$d/share/diffmm/$$f"; \
	    list="$$list share/diffmm/$$f"; done; \
	for f in $(MANPAGES); do install -m 644 $$f "$$d/share/man/man1/"; list="$$list share/man/man1/$${f##*/}"; done; \
	install -m 644 scripts/diffmm-completion.bash "$$d/share/bash-completion/completions/diffmm"; \
	list="$$list share/bash-completion/completions/diffmm share/diffmm/installed"; \
	printf '%s\n' $$list > "$$d/share/diffmm/installed"; \
	echo "install: $$(echo $$list | wc -w) files under $$d (diffmm help: the stages)"

uninstall:
	@set -e; d="$(DEST)"; \
	test -f "$$d/share/diffmm/installed" || { echo "uninstall: nothing installed under $$d (no share/diffmm/installed)" >&2; exit 1; }; \
	n=0; for f in $$(cat "$$d/share/diffmm/installed"); do rm -f "$$d/$$f"; n=$$((n + 1)); done; \
	rmdir "$$d/libexec/diffmm" "$$d/share/diffmm/pipelines" "$$d/share/diffmm" 2>/dev/null || true; \
	echo "uninstall: $$n files removed from $$d"

$(DEPS_OK): scripts/deps.sh
	@mkdir -p build
	@scripts/deps.sh build
	@touch $@

$(B)/common/%.o: common/%.c | $(DEPS_OK)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

# the unpacked 64-wide products are written as a*b+c: let gcc fuse them
# into FMA instructions (ISO C mode leaves them apart), as OpenBLAS does
$(B)/common/kernels/dn_n64.o: CFLAGS += -ffp-contract=fast
$(LIBOBJ) $(CLIOBJ): Makefile

# made afresh: `ar r` into an old archive would keep members whose sources
# have moved or gone
$(B)/libdiffmm.a: $(LIBOBJ)
	rm -f $@ && ar rcs $@ $^

$(B)/libcli.a: $(CLIOBJ)
	rm -f $@ && ar rcs $@ $^

$(B)/stages/%.o: stages/%.c | $(DEPS_OK)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

# linked under a temporary name and renamed: a pipeline running while you
# rebuild never executes a half-written binary
$(BINDIR)/%: $(B)/stages/%.o $(B)/libcli.a $(B)/libdiffmm.a
	@mkdir -p $(BINDIR)
	$(CC) $(LDFLAGS) -o $@.tmp $^ $(LDLIBS) && mv -f $@.tmp $@

$(B)/tests/%: tests/tools/%.c $(B)/libcli.a $(B)/libdiffmm.a | $(DEPS_OK)
	@mkdir -p $(B)/tests
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The whole suite, then the reader suites again against the sanitizer build
# (bin-san/), and tests/fuzz.bats replaying and briefly running the fuzz
# harnesses: tests/run does all three.
test: all
	@scripts/deps.sh test
	@$(MAKE) --no-print-directory SANITIZE=1 all
	@$(MAKE) --no-print-directory fuzz-build
	@tests/run

# ---- fuzzing (docs/SECURITY.md): `make fuzz [FUZZ=ts] [FUZZ_SECONDS=300]` ----
# libFuzzer harnesses (tests/fuzz/fuzz-*.c) for the pickle, .npy and stream
# readers, built by Debian's clang with ASan + UBSan into build/fuzz/; each
# runs FUZZ_SECONDS in turn (tests/fuzz/run sets the options): new inputs
# grow build/fuzz/corpus/, crashes land in tests/fuzz/crashes/HARNESS/.
FUZZ_CC      ?= clang-14
FUZZ_SECONDS ?= 300
FUZZ         ?= pkl npy ts
FUZZ_CFLAGS  := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all \
                -std=c11 -D_GNU_SOURCE -Wall -Wextra -Icommon -Istages
FUZZ_BINS    := build/fuzz/fuzz-pkl build/fuzz/fuzz-npy build/fuzz/fuzz-ts
DEPS_TEST    := build/.deps-test

$(DEPS_TEST): scripts/deps.sh
	@mkdir -p build
	@scripts/deps.sh test
	@touch $@

# the library's readers, instrumented for coverage (libFuzzer's runtime is
# linked into the harness alone); the stream reader's and writer's 1 MiB
# buffers shrunk to 1 KiB, so that inputs of a few KB reach the code paths of
# payloads larger than a buffer (and each execution skips mapping 2-4 MiB)
FUZZ_BUFS    := -DIN_CAP=1024u -DOUT_CAP=1024u -DBUF_CAP=1024u -DDIRECT_MIN=256u -DCHUNK=512u
build/fuzz/obj/%.o: common/%.c Makefile | $(DEPS_TEST)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_BUFS) -fsanitize=fuzzer-no-link -MMD -MP -c -o $@ $<

build/fuzz/fuzz-%: tests/fuzz/fuzz-%.c | $(DEPS_TEST)
	@mkdir -p build/fuzz
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -MMD -MP -o $@ $(filter %.c %.o,$^) $(MSGPACK_LIB) -lzstd -lm

FUZZ_TS_OBJ  := $(patsubst %,build/fuzz/obj/io/%.o,ts_read ts_record ts_write crc dt)
build/fuzz/fuzz-pkl: build/fuzz/obj/io/pkl.o
build/fuzz/fuzz-npy: build/fuzz/obj/io/npy.o $(FUZZ_TS_OBJ)
build/fuzz/fuzz-ts: $(FUZZ_TS_OBJ)

fuzz-build: $(FUZZ_BINS)

fuzz: fuzz-build
	@st=0; for h in $(FUZZ); do tests/fuzz/run $$h $(FUZZ_SECONDS) || st=1; done; exit $$st

# the seed corpora, from the fixtures and generators (tests/fuzz/make_corpus.py)
fuzz-corpus: all
	@/usr/bin/python3 tests/fuzz/make_corpus.py

bench: all
	@scripts/deps.sh test
	@tests/bench/run

clean:
	rm -rf build bin build-san bin-san

# ---- pipelines (pipelines/run.mk): `make tiktok`, `make baby VARIANT=lightgcn`, ... ----

RUNMK := $(MAKE) --no-print-directory -f pipelines/run.mk

tiktok baby sports: all
	+@$(RUNMK) DATASET=$@ run

# make run DATA=path [FORMAT=mmrec] [DATASET=...]: any dataset folder, the
# settings of pipelines/<its name>.mk when there is one (else the defaults)
run: all
	+@$(RUNMK) run

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

# make sweep DATASET=tiktok SEEDS='421 7 1' VARIANTS='diffmm nodiff ...' [NAME=value...]:
# every run its own target (make -j, SUBMIT=...), then one table per dataset
sweep: all
	+@$(MAKE) --no-print-directory -f pipelines/sweep.mk sweep

# make plot [DATASET=tiktok] [VARIANT=...] [SEED=...]: the run's curves to a PNG
plot: all
	@scripts/deps.sh plot
	@$(RUNMK) DATASET=$(or $(DATASET),demo) plot

# make ablation-tiktok: DiffMM, no diffusion graphs, no contrastive loss, each
# single modality, and LightGCN, then one table of their summaries
ablation-%: all
	+@$(RUNMK) DATASET=$* ablation

.PHONY: all test bench clean tiktok baby sports demo plot sweep run install uninstall fuzz fuzz-build fuzz-corpus
.SECONDARY:
-include $(LIBOBJ:.o=.d) $(CLIOBJ:.o=.d) $(patsubst stages/%.c,$(B)/stages/%.d,$(wildcard stages/*.c)) $(wildcard build/fuzz/*.d build/fuzz/obj/*/*.d)
