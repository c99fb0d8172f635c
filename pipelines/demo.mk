# pipelines/demo.mk: the synthetic dataset examples/make_synthetic.py makes
# (planted topics that the item features reveal), small enough for a few
# epochs in well under three minutes on two cores.
DATA      ?= runs/demo-data
EPOCHS    ?= 6
REG       ?= 1e-4
TRANS     ?= 1
CL_METHOD ?= 1
DIMS      ?= 200
