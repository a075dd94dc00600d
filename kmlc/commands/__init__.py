"""Sub-commands of the `kmlc` command line (see `kmlc.cli`)."""
