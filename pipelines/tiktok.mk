# pipelines/tiktok.mk: TikTok with the release's settings (its README).
DATA      ?= ../shared/datasets/tiktok
REG       ?= 1e-4
SSL_REG   ?= 1e-2
EPOCHS    ?= 50
TRANS     ?= 1
E_LOSS    ?= 0.1
CL_METHOD ?= 1
