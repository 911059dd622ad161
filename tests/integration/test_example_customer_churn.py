"""examples/customer-churn end to end on a loopback S3: the SageMaker-shaped manifest, a native
XGBoost booster, one class per input line, precision/recall against the held-out labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import xgboost as xgb
from example_support import EXAMPLES, kbt_run, load_example

EXAMPLE = EXAMPLES / "customer-churn"


def test_sagemaker_manifest_scores_every_customer(s3_env: str, s3_client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    work = tmp_path / "work"
    load_example("customer-churn", "prepare").prepare(work=work, s3_endpoint=s3_env)
    kbt_run(EXAMPLE / "tf-batch.yaml", "-m", EXAMPLE / "model.yaml")

    report = load_example("customer-churn", "report")
    outputs = report.download("s3://churn/batch-transform/output/", tmp_path)
    booster = xgb.Booster()
    booster.load_model(work / "model" / "xgboost-model.json")
    for source in sorted((work / "data").glob("*.csv")):
        features = pd.read_csv(source, header=None).to_numpy()
        expected = (booster.inplace_predict(features) > 0.5).astype(int)
        written = report.read_predictions(outputs / f"{source.name}.out").to_numpy()
        np.testing.assert_array_equal(written, expected, err_msg=source.name)

    scores = report.score(outputs, work / "labels")
    assert scores.customers == 1500
    assert scores.actual_positive == int(
        sum(pd.read_csv(p)["churned"].sum() for p in (work / "labels").glob("*.csv"))
    )
    assert 0.5 < scores.precision <= 1 and 0.4 < scores.recall <= 1
