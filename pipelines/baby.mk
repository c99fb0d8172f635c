# pipelines/baby.mk: Amazon Baby with the release's settings.  The copy in
# ../shared has interactions only: add <modality>_feat.npy files to DATA for
# DiffMM, or run VARIANT=lightgcn.
DATA      ?= ../shared/datasets/baby
REG       ?= 1e-5
SSL_REG   ?= 1e-1
KEEP_RATE ?= 1
E_LOSS    ?= 0.01
