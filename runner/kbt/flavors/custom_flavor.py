"""Azure ML scoring scripts, unmodified: a Python file with ``init()`` and ``run(mini_batch)``.

Before ``init()`` the script's folder is put on ``sys.path``, ``AZUREML_MODEL_DIR`` is set to the
model's local folder and ``AZUREML_BI_OUTPUT_PATH`` to the shard's output folder (``output_dir``:
the runner uploads what a script writes there to ``s3OutputPath``, kbt.runner.custom_outputs).
What ``mini_batch`` holds for tabular input follows ``LoadContext.mini_batch`` (the job's
``miniBatchMode``, see kbt.api.azureml): ``files`` (Azure's default) gives a list of file paths,
the records of each source written as one file of the input's format named after the source (the
runner hands such a script whole files, kbt.runner.batching); ``records`` gives a DataFrame. Any
other input is a list of file paths: each record written to a scratch file named after its source
(the source's own name when the record is a whole object, ``<stem>-<index><suffix>`` for one
record of a split file).

``run`` returns a DataFrame or a list with one entry per record; ``None`` (the script wrote its own
outputs) gives rows without columns. A generator ``run()`` is run to its end and its items are
taken as the list it yields (DataFrames yielded are concatenated), so the files it writes get
written; Azure documents only lists and DataFrames ("It is required for the run function to return
a list or a pandas.DataFrame object", Customize outputs in batch deployments). When the job keeps
no predictions (``discard_predictions``: summaryOnly), whatever ``run`` returns is accepted, as in
Azure, where a summary-only script may return the processed file paths.

Any other exception from ``run`` rejects the mini-batch (the runner isolates the bad records),
except running out of memory, which says nothing about the records: an accelerator
out-of-memory error is retried on halves of the mini-batch (``kbt.flavors.backoff``), and a
``MemoryError`` (host memory) ends the shard with a retriable ``DeviceOutOfMemoryError``.
"""

from __future__ import annotations

import gc
import importlib.util
import os
import shutil
import sys
import traceback
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import count
from pathlib import Path, PurePosixPath
from types import ModuleType
from typing import Any

import pandas as pd

from kbt.api.models import MiniBatchMode
from kbt.flavors.backoff import is_out_of_memory, predict_with_backoff
from kbt.flavors.base import BatchRejected, LoadContext, ModelInput, ModelLoadError, ModelOutput, Record
from kbt.flavors.errors import DeviceOutOfMemoryError
from kbt.flavors.loading import add_code_paths, model_directory
from kbt.flavors.outputs import expect_rows
from kbt.log import get_logger
from kbt.runner.formats import TabularFile, content_format

log = get_logger(__name__)

_batch_numbers = count()


def _safe_relative(source: str) -> PurePosixPath:
    parts = [part for part in PurePosixPath(source).parts if part not in ("/", "..", ".")]
    return PurePosixPath(*parts) if parts else PurePosixPath("record")


def record_file_names(records: Sequence[Record]) -> list[PurePosixPath]:
    """Scratch-relative file names: the source's own when the batch holds that source whole-object
    record only, ``<stem>-<index><suffix>`` beside it otherwise."""
    per_source: dict[str, int] = {}
    for record in records:
        per_source[record.source] = per_source.get(record.source, 0) + 1
    names = []
    for record in records:
        path = _safe_relative(record.source)
        if per_source[record.source] == 1 and record.index == 0:
            names.append(path)
        else:
            stem = path.name[: -len(path.suffix)] if path.suffix else path.name
            names.append(path.with_name(f"{stem}-{record.index}{path.suffix}"))
    return names


def _tabular_file(batch: ModelInput) -> TabularFile | None:
    """How the batch's records are written as one file per source; None: not tabular."""
    return content_format(batch.content_type, "transformInput.contentType").tabular_file


def _write_tabular(frame: pd.DataFrame, records: Sequence[Record], kind: TabularFile, path: Path) -> None:
    if kind == TabularFile.CSV:
        frame.to_csv(path, index=False)
    elif kind == TabularFile.PARQUET:
        frame.to_parquet(path, index=False)
    elif kind == TabularFile.JSON_RECORDS:
        frame.to_json(path, orient="records")
    else:  # the records' own bytes, one per line
        path.write_bytes(b"\n".join(record.data.rstrip(b"\n") for record in records) + b"\n")


@dataclass
class ScoringScriptPredictor:
    module: ModuleType
    script: Path
    scratch: Path
    files_for_tabular: bool
    discard_predictions: bool = False
    device: str = "cpu"
    rows_independent: bool = False  # the script sees exactly its mini-batches

    def predict(self, batch: ModelInput) -> ModelOutput:
        try:
            return predict_with_backoff(self._predict_once, batch, _release_memory)
        except MemoryError as exc:
            raise DeviceOutOfMemoryError(
                f"{self.script.name} run() ran out of host memory on the mini-batch starting at "
                f"{self._first_record(batch)}: MemoryError: {exc}"
            ) from exc

    def _predict_once(self, batch: ModelInput) -> ModelOutput:
        work = self.scratch / f"mini-batch-{next(_batch_numbers)}"
        try:
            mini_batch = self._mini_batch(batch, work)
            try:
                result = self.module.run(mini_batch)
                if isinstance(result, Iterator):
                    result = _collected(list(result))
            except Exception as exc:
                if isinstance(exc, MemoryError) or is_out_of_memory(exc):
                    raise
                raise BatchRejected(
                    f"{self.script.name} run() failed on the mini-batch starting at "
                    f"{self._first_record(batch)}: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return self._rows(result, batch)

    @staticmethod
    def _first_record(batch: ModelInput) -> str:
        first = batch.records[0]
        return f"{first.source} record {first.index}"

    def _mini_batch(self, batch: ModelInput, work: Path) -> pd.DataFrame | list[str]:
        kind = _tabular_file(batch)
        if batch.frame is not None and kind is not None:
            if self.files_for_tabular:
                return self._tabular_files(batch, batch.frame, kind, work)
            return batch.frame.reset_index(drop=True)
        paths = []
        for record, name in zip(batch.records, record_file_names(batch.records), strict=True):
            path = work / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(record.data)
            paths.append(str(path))
        return paths

    def _tabular_files(
        self, batch: ModelInput, frame: pd.DataFrame, kind: TabularFile, work: Path
    ) -> list[str]:
        positions: dict[str, list[int]] = {}
        for position, record in enumerate(batch.records):
            positions.setdefault(record.source, []).append(position)
        paths = []
        for source, rows in positions.items():
            path = work / _safe_relative(source)
            path.parent.mkdir(parents=True, exist_ok=True)
            records = [batch.records[i] for i in rows]
            _write_tabular(frame.iloc[rows], records, kind, path)
            paths.append(str(path))
        return paths

    def _rows(self, result: Any, batch: ModelInput) -> ModelOutput:
        what = f"{self.script.name} run()"
        if result is None or self.discard_predictions:
            return pd.DataFrame(index=range(len(batch)))
        if isinstance(result, pd.DataFrame | pd.Series | list):
            return expect_rows(result, len(batch), what)
        raise BatchRejected(f"{what} returned {type(result).__name__}; expected a DataFrame, a list or None")


def _collected(items: list[Any]) -> pd.DataFrame | list[Any]:
    """A generator's items as run() would have returned them: yielded frames as one frame."""
    if items and all(isinstance(item, pd.DataFrame) for item in items):
        frame: pd.DataFrame = pd.concat(items, ignore_index=True)
        return frame
    return items


def _release_memory() -> None:
    """Free what a failed run() left behind before the halves are tried."""
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


def _resolve_script(reference: str, model_dir: Path | None, code_paths: list[Path]) -> Path:
    path = Path(reference).expanduser()
    if path.is_absolute():
        candidates = [path]
    else:
        bases = [*([model_dir] if model_dir else []), *code_paths, Path.cwd()]
        candidates = [base / path for base in bases]
    for candidate in candidates:
        if candidate.is_file():
            return candidate.resolve()
    tried = ", ".join(str(c) for c in candidates)
    raise ModelLoadError(f"scoringScript {reference!r} not found (looked at {tried})")


def _import_script(script: Path) -> ModuleType:
    sys.path.insert(0, str(script.parent))
    spec = importlib.util.spec_from_file_location(script.stem, script)
    if spec is None or spec.loader is None:
        raise ModelLoadError(f"scoringScript {script} is not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[script.stem] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise ModelLoadError(f"importing {script} failed: {_last_frame(exc)}") from exc
    for function in ("init", "run"):
        if not callable(getattr(module, function, None)):
            raise ModelLoadError(f"scoringScript {script} defines no {function}() function")
    return module


def _last_frame(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}"


def load(ctx: LoadContext) -> ScoringScriptPredictor:
    has_model = ctx.local_path != Path("") and ctx.local_path.exists()
    model_dir = model_directory(ctx.local_path) if has_model else None
    code_paths = add_code_paths(ctx.spec, model_dir)
    script = _resolve_script(str(ctx.spec.scoringScript), model_dir, code_paths)
    output_dir = ctx.output_dir or ctx.scratch_dir / "outputs"
    output_dir.mkdir(parents=True, exist_ok=True)
    if model_dir is not None:
        os.environ["AZUREML_MODEL_DIR"] = str(model_dir)
    os.environ["AZUREML_BI_OUTPUT_PATH"] = str(output_dir)
    module = _import_script(script)
    try:
        module.init()
    except Exception as exc:
        raise ModelLoadError(f"{script.name} init() failed: {_last_frame(exc)}") from exc
    scratch = ctx.scratch_dir / "custom-inputs"
    scratch.mkdir(parents=True, exist_ok=True)
    log.info("scoring script initialised", script=str(script), model_dir=str(model_dir))
    files = ctx.mini_batch == MiniBatchMode.FILES
    return ScoringScriptPredictor(module, script, scratch, files, ctx.discard_predictions)
