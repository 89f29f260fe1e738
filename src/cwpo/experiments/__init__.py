"""Experiments: the pipeline with cached stages, grids of methods, benchmark tracks, the report."""
