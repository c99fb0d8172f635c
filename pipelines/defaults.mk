# pipelines/defaults.mk: the release's default hyper-parameters
# (ALGORITHM.md section 10).  Dataset files set theirs first; the command
# line beats both.
EPOCHS         ?= 50
SEED           ?= 421
LR             ?= 1e-3
BATCH          ?= 1024
REG            ?= 1e-5
LATDIM         ?= 64
GNN_LAYER      ?= 1
SSL_REG        ?= 1e-2
TEMP           ?= 0.5
KEEP_RATE      ?= 0.5
DIMS           ?= 1000
D_EMB_SIZE     ?= 10
NORM           ?= 0
STEPS          ?= 5
NOISE_SCALE    ?= 0.1
NOISE_MIN      ?= 1e-4
NOISE_MAX      ?= 0.02
SAMPLING_NOISE ?= 0
SAMPLING_STEPS ?= 0
REBUILD_K      ?= 1
E_LOSS         ?= 0.1
RIS_LAMBDA     ?= 0.5
RIS_ADJ_LAMBDA ?= 0.2
TRANS          ?= 0
CL_METHOD      ?= 0
# not the release's: the inputs of the dense products (f32, or bf16 with f32
# sums; common/kernels/gemm.h)
PRECISION      ?= f32
# not the release's: users per reverse-process batch in augment (memory; with
# SAMPLING_NOISE its noise is drawn per batch) and so the unit SHARDS splits
AUGMENT_BATCH  ?= 1024
