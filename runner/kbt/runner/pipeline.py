"""The shard's streaming pipeline: read -> decode+predict+encode -> write, overlapped.

A reader thread frames records and packs mini-batches into a bounded queue; consecutive small
batches (one per small object) are grouped up to ``miniBatchSize`` records and predicted in one
call (kbt.runner.coalesce); up to ``maxConcurrentTransforms`` groups are decoded, predicted and
encoded at once on a thread pool;
the calling thread takes results back in input order and writes them, committing each work
item when its last batch is written. Queue and in-flight limits keep memory flat.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kbt.api.models import BatchStrategy, ContentType
from kbt.flavors.base import Predictor
from kbt.log import get_logger
from kbt.resolved import ResolvedJob
from kbt.runner.coalesce import concat_inputs, split_outcome, stack_runs
from kbt.runner.decode import Decoded, Decoder
from kbt.runner.encode import Encoded, Encoder
from kbt.runner.errors import ErrorThresholdExceeded, InputError, Stopped
from kbt.runner.output import ItemWriter
from kbt.runner.plan import WorkItem
from kbt.runner.predict import ModelRunner, Outcome
from kbt.runner.progress import ShardStats
from kbt.runner.reader import Batch, ItemReader, read_csv_header
from kbt.runner.state import Layout
from kbt.runner.storage import Store

log = get_logger(__name__)
FAIL_FAST_RECORDS = 100
PERCENT_MIN_RECORDS = 1000


@dataclass
class BatchResult:
    encoded: Encoded
    predicted: int
    failures: list[tuple[int, int, str]] = field(default_factory=list)  # (record, offset, reason)


class Threshold:
    """errorThreshold: -1 unlimited, a count, or a percent of the records seen (per shard)."""

    def __init__(self, setting: int | str) -> None:
        self.percent = float(setting[:-1]) if isinstance(setting, str) else None
        self.count = int(setting) if not isinstance(setting, str) else None

    def check(self, failed: int, seen: int, final: bool) -> None:
        if self.count is not None and self.count >= 0 and failed > self.count:
            raise ErrorThresholdExceeded(f"{failed} bad records, more than errorThreshold {self.count}")
        if self.percent is not None and (final or seen >= PERCENT_MIN_RECORDS) and seen:
            share = 100.0 * failed / seen
            if share > self.percent:
                raise ErrorThresholdExceeded(
                    f"{failed} of {seen} records bad ({share:.1f}%), more than errorThreshold {self.percent:g}%"
                )


class Pipeline:
    def __init__(
        self,
        job: ResolvedJob,
        predictor: Predictor,
        input_store: Store,
        layout: Layout,
        *,
        stats: ShardStats,
        scratch: Path,
        stop: threading.Event,
    ) -> None:
        self.job, self.input_store, self.layout, self.stats = job, input_store, layout, stats
        self.scratch, self.stop = scratch, stop
        self.decoder = Decoder(job)
        self.encoder = Encoder(job)
        self.model = ModelRunner(predictor, job.spec.retrySettings)
        self.concurrency = max(1, job.spec.maxConcurrentTransforms)
        single = job.spec.batchStrategy == BatchStrategy.SINGLE_RECORD
        self.batch_records = 1 if single else job.spec.miniBatchSize
        self.payload_limit = job.spec.maxPayloadInMB * 1024 * 1024
        self.threshold = Threshold(job.spec.errorThreshold)
        self.reasons: set[str] = set()
        self.first_failure = ""
        self._headers: dict[str, list[str] | None] = {}
        self._abort = threading.Event()

    # --- producer ------------------------------------------------------------------------
    def _header(self, item: WorkItem) -> list[str] | None:
        csv = self.job.spec.transformInput.csv
        if ContentType(self.job.spec.transformInput.contentType) != ContentType.CSV or csv.header is False:
            return None
        if item.key not in self._headers:
            self._headers[item.key] = read_csv_header(self.input_store, item.key, csv)
        return self._headers[item.key]

    def _put(self, out: queue.Queue[Any], message: Any) -> bool:
        while not self._abort.is_set():
            try:
                out.put(message, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self, items: list[WorkItem], out: queue.Queue[Any]) -> None:
        try:
            seq = 0
            for item in items:
                reader = ItemReader(self.input_store, self.job, item)
                if item.start > 0:
                    reader.header = self._header(item)
                if not self._put(out, ("start", item, reader)):
                    return
                for batch in reader.batches(seq):
                    seq = batch.seq + 1
                    if self.stop.is_set() or not self._put(out, ("batch", batch, reader)):
                        return
                if not self._put(out, ("end", item, reader)):
                    return
        except BaseException as exc:
            self._put(out, ("error", exc, None))
        finally:
            self._put(out, None)

    def _messages(self, source: queue.Queue[Any]) -> Iterator[tuple[str, Any, Any]]:
        while (message := source.get()) is not None:
            yield message

    # --- workers -------------------------------------------------------------------------
    def _process_group(self, group: list[tuple[Batch, list[str] | None]]) -> list[BatchResult]:
        """Decode each batch, predict them together when their inputs stack, encode each."""
        decoded = [self.decoder.decode(batch, header) for batch, header in group]
        live = [d for d in decoded if d.positions]
        outcomes: dict[int, Outcome] = {}
        for run in stack_runs([d.model_input for d in live]):
            inputs = [live[i].model_input for i in run]
            parts = split_outcome(self.model.run(concat_inputs(inputs)), [len(i) for i in inputs])
            outcomes.update({id(live[i]): outcome for i, outcome in zip(run, parts, strict=True)})
        return [
            self._finish(batch, d, outcomes.get(id(d))) for (batch, _), d in zip(group, decoded, strict=True)
        ]

    def _finish(self, batch: Batch, decoded: Decoded, outcome: Outcome | None) -> BatchResult:
        failures = list(batch.rejected)
        failures += [self._locate(batch, position, reason) for position, reason in decoded.rejected.items()]
        if outcome is None:
            return BatchResult(Encoded(), 0, failures)
        original = decoded.positions
        failures += [self._locate(batch, original[p], reason) for p, reason in outcome.failed.items()]
        decoded.positions = [original[p] for p in outcome.positions]
        if decoded.values is not None:
            decoded.values = [decoded.values[p] for p in outcome.positions]
        if not outcome.positions:
            return BatchResult(Encoded(), 0, failures)
        encoded = self.encoder.encode(batch, decoded, outcome.merged())
        failures += [
            self._locate(batch, decoded.positions[p], reason) for p, reason in encoded.rejected.items()
        ]
        return BatchResult(encoded, len(outcome.positions) - len(encoded.rejected), failures)

    def _overflows(
        self, group: list[tuple[Batch, list[str] | None, Future[BatchResult]]], batch: Batch
    ) -> bool:
        """Whether ``batch`` no longer fits the group: miniBatchSize records, maxPayloadInMB bytes."""
        records = sum(len(b.records) for b, *_ in group) + len(batch.records)
        payload = sum(b.payload for b, *_ in group) + batch.payload
        return bool(group) and (
            records > self.batch_records or bool(self.payload_limit and payload > self.payload_limit)
        )

    def _run_group(self, entries: list[tuple[Batch, list[str] | None, Future[BatchResult]]]) -> None:
        try:
            results = self._process_group([(batch, header) for batch, header, _ in entries])
        except BaseException as exc:
            for *_, placeholder in entries:
                placeholder.set_exception(exc)
            return
        for (*_, placeholder), result in zip(entries, results, strict=True):
            placeholder.set_result(result)

    @staticmethod
    def _locate(batch: Batch, position: int, reason: str) -> tuple[int, int, str]:
        return batch.records[position].index, batch.offsets[position], reason

    # --- consumer ------------------------------------------------------------------------
    def run(self, items: list[WorkItem], on_commit: Any) -> None:
        source: queue.Queue[Any] = queue.Queue(maxsize=2 * self.concurrency + 2)
        producer = threading.Thread(
            target=self._produce, args=(items, source), name="kbt-reader", daemon=True
        )
        producer.start()
        pending: deque[tuple[tuple[str, Any, Any], Future[BatchResult] | None]] = deque()
        group: list[tuple[Batch, list[str] | None, Future[BatchResult]]] = []
        submitted: list[Future[None]] = []
        writer: ItemWriter | None = None
        queued = 0  # records of the batches in `pending`
        in_flight_limit = self.batch_records * (self.concurrency + 1)

        def submit_group(pool: ThreadPoolExecutor) -> None:
            if group:
                submitted.append(pool.submit(self._run_group, list(group)))
                group.clear()

        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="kbt-model") as pool:
            try:
                for message in self._messages(source):
                    if self.stop.is_set():
                        raise Stopped("stopped by SIGTERM")
                    kind, payload, reader = message
                    if kind == "error":
                        raise payload
                    placeholder: Future[BatchResult] | None = None
                    if kind == "batch":
                        if self._overflows(group, payload):
                            submit_group(pool)
                        placeholder = Future()
                        group.append((payload, reader.header, placeholder))
                        queued += len(payload.records)
                    pending.append((message, placeholder))
                    while pending:
                        head = pending[0][1]
                        if head is not None and not head.done() and queued <= in_flight_limit:
                            break
                        if head is not None and any(entry[2] is head for entry in group):
                            submit_group(pool)
                        entry = pending.popleft()
                        queued -= len(entry[0][1].records) if entry[0][0] == "batch" else 0
                        writer = self._drain(entry, writer, on_commit)
                submit_group(pool)
                while pending:
                    writer = self._drain(pending.popleft(), writer, on_commit)
                if self.stop.is_set():
                    raise Stopped("stopped by SIGTERM")
            finally:
                self._abort.set()
                if writer is not None:
                    writer.discard()
                for future in submitted:
                    future.cancel()

    def _drain(
        self,
        entry: tuple[tuple[str, Any, Any], Future[BatchResult] | None],
        writer: ItemWriter | None,
        on_commit: Any,
    ) -> ItemWriter | None:
        (kind, payload, reader), future = entry
        if kind == "start":
            return ItemWriter(self.job, self.layout, payload, self.scratch, self.input_store.uri(payload.key))
        assert writer is not None
        if kind == "end":
            self.stats.bytes_current = 0
            marker = writer.commit()
            self.threshold.check(self.stats.records_failed, self.stats.records_processed, final=False)
            on_commit(payload, marker)
            return None
        assert future is not None
        result = future.result()
        rejected = writer.write(result.encoded, result.predicted)
        failures = result.failures
        if rejected is not None:
            failures = failures + [self._locate(payload, i, rejected) for i in range(len(payload.records))]
        for record, offset, reason in sorted(failures):
            writer.error(record, offset, reason)
            self._note_failure(payload.item, record, reason)
        self.stats.records_processed += result.predicted + len(failures)
        self.stats.records_this_run += result.predicted + len(failures)
        self.stats.records_failed += len(failures)
        self.stats.bytes_current = reader.bytes_read
        self.threshold.check(self.stats.records_failed, self.stats.records_processed, final=False)
        self._fail_fast()
        return writer

    def _note_failure(self, item: WorkItem, record: int, reason: str) -> None:
        if len(self.reasons) < 2:
            self.reasons.add(reason)
        if not self.first_failure:
            self.first_failure = f"{item.label} record {record}"

    def _fail_fast(self) -> None:
        seen, failed = self.stats.records_this_run, self.stats.records_failed
        if seen >= FAIL_FAST_RECORDS and failed == self.stats.records_processed and len(self.reasons) == 1:
            (reason,) = self.reasons
            raise InputError(
                f"the first {seen} records all failed the same way, so the input does not fit the "
                f"model: {reason} (first: {self.first_failure})"
            )
