"""Re-run a job the way ``kbt run`` does, in process: plan afresh (reporting what changed since
the last run), then run its single shard with a predictor that counts the rows it scores."""

from __future__ import annotations

from kbt.api.resolved import ResolvedJob
from kbt.flavors.base import ModelInput, ModelOutput
from kbt.runner.shard import run_shard
from kbt.runner.state import current_plan, layout_for


class CountingSum:
    """Sums each CSV row; counts the rows it scored."""

    device = "cpu"
    rows_independent = True

    def __init__(self) -> None:
        self.rows = 0

    def predict(self, batch: ModelInput) -> ModelOutput:
        assert batch.frame is not None
        self.rows += len(batch.frame)
        return batch.frame.astype(float).sum(axis=1).to_numpy()


def rerun(job: ResolvedJob) -> tuple[list[str], int]:
    """The changes reported and the number of rows scored."""
    _, changes = current_plan(job, layout_for(job), 1, refresh=True)
    predictor = CountingSum()
    run_shard(job, 0, shards=1, predictor=predictor, progress_interval=60)
    return changes, predictor.rows
