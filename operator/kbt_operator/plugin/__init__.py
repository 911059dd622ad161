"""`kubectl btj`: a kubectl plugin to follow, inspect, stop and retry BatchTransformJobs."""

from kbt_operator.plugin.cli import app, main

__all__ = ["app", "main"]
