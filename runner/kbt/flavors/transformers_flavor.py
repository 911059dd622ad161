"""Hugging Face transformers models from a local (or fetched) model directory.

Sequence-to-sequence tasks (summarization, translation*, text2text-generation) run
``generate`` directly, and feature-extraction pools the last hidden state (attention-masked
mean, or ``pooling: cls``): these are done here so batches can be length-sorted and padding
stays out of the embeddings. Every other task goes through ``transformers.pipeline``.
Texts come from text/plain input or a frame column (``text``, ``inputs`` or the only column).
Within a mini-batch texts are sorted by length, batched by ``generation.batch_size`` (default
16) and the predictions restored to input order. Other ``generation`` entries go to
``generate`` / the pipeline call (max_new_tokens, num_beams, top_k ...).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from kbt.flavors.backoff import predict_with_backoff
from kbt.flavors.base import BatchRejected, LoadContext, ModelInput, ModelLoadError, ModelOutput
from kbt.flavors.device import torch_device, torch_dtype
from kbt.flavors.errors import InputSchemaError, RecordsRejected
from kbt.flavors.outputs import array_rows, jsonable
from kbt.log import get_logger

log = get_logger(__name__)

TEXT_COLUMNS = ("text", "inputs")
DEFAULT_BATCH_SIZE = 16
SEQ2SEQ_OUTPUT_KEYS = {"summarization": "summary_text", "text2text-generation": "generated_text"}
POOLINGS = ("mean", "cls")
UNBOUNDED_TOKENS = 1_000_000  # tokenizers that state no limit; the model's positions bound it


def seq2seq_key(task: str) -> str | None:
    """The output column of a sequence-to-sequence task, or None for other tasks."""
    if task.startswith("translation"):
        return "translation_text"
    return SEQ2SEQ_OUTPUT_KEYS.get(task)


def batch_texts(batch: ModelInput) -> list[str]:
    """The texts of a mini-batch; records without text are rejected by position."""
    if batch.texts is not None:
        values: list[Any] = list(batch.texts)
    elif batch.frame is not None:
        columns = [str(c) for c in batch.frame.columns]
        name = next((c for c in TEXT_COLUMNS if c in columns), columns[0] if len(columns) == 1 else None)
        if name is None:
            raise InputSchemaError(
                f"the transformers model needs a 'text' or 'inputs' column (or a single column); input "
                f"columns: {', '.join(columns)}; pick one with dataProcessing.inputFilter"
            )
        values = batch.frame[name].tolist()
    else:
        raise InputSchemaError(
            f"the transformers model needs text or tabular input, got {batch.content_type}"
        )
    problems = {
        i: f"{batch.records[i].source} record {batch.records[i].index}: no text (got {value!r})"
        for i, value in enumerate(values)
        if not isinstance(value, str)
    }
    if problems:
        raise RecordsRejected(problems)
    return values


def length_order(lengths: list[int]) -> list[int]:
    """Positions sorted longest first, so each batch pads to similar lengths."""
    return sorted(range(len(lengths)), key=lambda i: -lengths[i])


def chunks(order: list[int], size: int) -> list[list[int]]:
    return [order[start : start + size] for start in range(0, len(order), size)]


@dataclass
class EncoderPredictor:
    """Seq2seq generation and feature extraction over length-sorted, padded batches."""

    model: Any
    tokenizer: Any
    task: str
    device: str
    batch_size: int
    max_input_tokens: int
    options: dict[str, Any] = field(default_factory=dict)
    rows_independent: bool = False  # the call is the device batch

    def predict(self, batch: ModelInput) -> ModelOutput:
        return predict_with_backoff(self._predict, batch, self._release_memory)

    def _predict(self, batch: ModelInput) -> ModelOutput:
        encoded = self.tokenizer(batch_texts(batch), truncation=True, max_length=self.max_input_tokens)
        ids: list[list[int]] = encoded["input_ids"]
        results: list[Any] = [None] * len(ids)
        for positions in chunks(length_order([len(i) for i in ids]), self.batch_size):
            padded = self.tokenizer.pad(
                {
                    "input_ids": [ids[p] for p in positions],
                    "attention_mask": [encoded["attention_mask"][p] for p in positions],
                },
                return_tensors="pt",
            ).to(self.device)
            for position, value in zip(positions, self._run(padded), strict=True):
                results[position] = value
        key = seq2seq_key(self.task)
        if key is not None:
            return pd.DataFrame({key: results})
        return array_rows(np.stack(results), len(batch), "the transformers model")

    def _run(self, padded: Any) -> list[Any]:
        with torch.inference_mode():
            if seq2seq_key(self.task) is not None:
                generated = self.model.generate(**padded, **self.options)
                return list(self.tokenizer.batch_decode(generated, skip_special_tokens=True))
            hidden = self.model(**padded).last_hidden_state.float()
        if self.options.get("pooling", "mean") == "cls":
            pooled = hidden[:, 0]
        else:
            mask = padded["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)
        return list(pooled.cpu().numpy())

    def _release_memory(self) -> None:
        if self.device.startswith("cuda"):
            torch.cuda.empty_cache()


@dataclass
class PipelinePredictor:
    """Any other task through ``transformers.pipeline``, fed longest texts first."""

    pipe: Any
    device: str
    batch_size: int
    options: dict[str, Any] = field(default_factory=dict)
    rows_independent: bool = False  # the call is the device batch

    def predict(self, batch: ModelInput) -> ModelOutput:
        return predict_with_backoff(self._predict, batch)

    def _predict(self, batch: ModelInput) -> ModelOutput:
        texts = batch_texts(batch)
        order = length_order([len(text) for text in texts])
        try:
            outputs = self.pipe([texts[p] for p in order], batch_size=self.batch_size, **self.options)
        except (ValueError, TypeError, IndexError) as exc:
            raise BatchRejected(
                f"the transformers pipeline failed on {batch.records[0].source}: {exc}"
            ) from exc
        results: list[Any] = [None] * len(texts)
        for position, output in zip(order, outputs, strict=True):
            results[position] = jsonable(output)
        if all(isinstance(item, dict) for item in results):
            return pd.DataFrame(results)
        column = "entities" if self.pipe.task in ("token-classification", "ner") else "output"
        return pd.DataFrame({column: results})


def _max_input_tokens(tokenizer: Any, config: Any) -> int:
    limits = [tokenizer.model_max_length, getattr(config, "max_position_embeddings", None)]
    return min((limit for limit in limits if isinstance(limit, int)), default=UNBOUNDED_TOKENS)


def load(ctx: LoadContext) -> EncoderPredictor | PipelinePredictor:
    import transformers

    task = str(ctx.spec.task)
    model_dir = ctx.local_path if ctx.local_path.is_dir() else ctx.local_path.parent
    if not (model_dir / "config.json").is_file():
        raise ModelLoadError(f"{model_dir} is not a transformers model directory (no config.json)")
    options = dict(ctx.spec.generation)
    batch_size = int(options.pop("batch_size", DEFAULT_BATCH_SIZE))
    device = torch_device(ctx.spec)
    dtype = torch_dtype(ctx.spec, device)
    try:
        if seq2seq_key(task) is not None or task == "feature-extraction":
            return _load_encoder(
                model_dir, task, device=device, dtype=dtype, batch_size=batch_size, options=options
            )
        if "pooling" in options:
            raise ModelLoadError("generation.pooling applies to task feature-extraction only")
        build_pipeline: Any = transformers.pipeline
        pipe = build_pipeline(task, model=str(model_dir), device=device, dtype=dtype)
    except ModelLoadError:
        raise
    except Exception as exc:
        raise ModelLoadError(f"cannot load transformers model {model_dir} for task {task}: {exc}") from exc
    log.info("loaded transformers pipeline", task=task, path=str(model_dir), device=device)
    return PipelinePredictor(pipe, device, batch_size, options)


def _load_encoder(
    model_dir: Path, task: str, *, device: str, dtype: torch.dtype, batch_size: int, options: dict[str, Any]
) -> EncoderPredictor:
    import transformers

    if task == "feature-extraction":
        pooling = options.setdefault("pooling", "mean")
        unused = sorted(set(options) - {"pooling"})
        if unused:
            raise ModelLoadError(f"feature-extraction takes generation.pooling only, not {', '.join(unused)}")
        if pooling not in POOLINGS:
            raise ModelLoadError(f"generation.pooling must be one of {', '.join(POOLINGS)}, got {pooling!r}")
        model_class: Any = transformers.AutoModel
    else:
        model_class = transformers.AutoModelForSeq2SeqLM
    model = model_class.from_pretrained(str(model_dir), dtype=dtype).to(device).eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(model_dir))
    log.info("loaded transformers model", task=task, path=str(model_dir), device=device)
    return EncoderPredictor(
        model, tokenizer, task, device, batch_size, _max_input_tokens(tokenizer, model.config), options
    )
