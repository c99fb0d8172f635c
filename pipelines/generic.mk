# pipelines/generic.mk: a dataset with no settings file of its own: the
# release's defaults (defaults.mk) and whatever the command line sets.
