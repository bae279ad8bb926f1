"""One file per component (see workers.runners.visual.registry)."""
