# pipelines/sports.mk: Amazon Sports with the release's settings.  The copy
# in ../shared has interactions only and no validation split.
DATA       ?= ../shared/datasets/sports
REG        ?= 1e-6
SSL_REG    ?= 1e-2
TEMP       ?= 0.1
RIS_LAMBDA ?= 0.1
E_LOSS     ?= 0.5
KEEP_RATE  ?= 1
TRANS      ?= 1
