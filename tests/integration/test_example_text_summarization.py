"""examples/text-summarization end to end: CSV records spanning lines, the `text` column picked by
inputFilter, one summary per bill in input order, equal to what the model generates directly."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import torch
import yaml
from example_support import EXAMPLES, kbt_run, load_example, retarget

EXAMPLE = EXAMPLES / "text-summarization"
CHECKED = 8  # bills whose summary is recomputed here


def test_one_summary_per_bill_as_the_model_generates(tmp_path: Path) -> None:
    work = tmp_path / "work"
    load_example("text-summarization", "prepare").prepare(work=work, files=1)
    kbt_run(retarget(EXAMPLE / "job.yaml", work, tmp_path))

    source = next((work / "data").glob("*.csv"))
    bills = pd.read_csv(source)
    assert source.read_text().count("\n") > 10 * len(bills), "fixture should have multi-line records"
    lines = (work / "predictions" / f"{source.name}.out").read_text().splitlines()
    summaries = [json.loads(line)["summary_text"] for line in lines]
    assert len(summaries) == len(bills)
    assert all(summary.strip() for summary in summaries)

    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer  # noqa: PLC0415 (heavy: transformers loads torch)

    settings = next(d for d in yaml.safe_load_all((EXAMPLE / "job.yaml").open()) if d["kind"] == "Model")
    options = {k: v for k, v in settings["spec"]["generation"].items() if k != "batch_size"}
    tokenizer = AutoTokenizer.from_pretrained(work / "model")
    model = AutoModelForSeq2SeqLM.from_pretrained(work / "model").eval()
    for position in range(CHECKED):
        encoded = tokenizer([bills["text"][position]], truncation=True, max_length=256, return_tensors="pt")
        with torch.inference_mode():
            generated = model.generate(**encoded, **options)
        assert summaries[position] == tokenizer.batch_decode(generated, skip_special_tokens=True)[0]
