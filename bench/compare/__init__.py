"""Head-to-head benchmark of kbt against the usual ways to batch-score a model.

``python -m bench.compare`` (``make bench``) builds the data and models, runs every contender
on every workload in one process run, and writes ``bench/results/latest.md`` and PNG plots.
"""
