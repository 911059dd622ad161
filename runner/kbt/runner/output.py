"""Write one work item's output and errors (each atomically) and give back its done-marker.

Output is kept in memory while it is small (most objects of image and document jobs: one put,
no scratch file), spooled to a local scratch file once it passes ``MEMORY_LIMIT`` (memory stays
flat), then uploaded in one atomic put. Parquet output uses one writer per item; every batch is
cast to the first batch's schema (a batch that cannot be cast fails its records).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from kbt.api.resolved import ResolvedJob
from kbt.runner.batching import Failure
from kbt.runner.encode import Encoded
from kbt.runner.plan import WorkItem
from kbt.runner.state import Layout, item_output_key

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.parquet as pq

# Output bytes an item keeps in memory before spooling to scratch: under S3's single-request
# upload size (boto3 uploads a smaller file with one PutObject too), so the object is the same.
MEMORY_LIMIT = 1 << 20


class ItemWriter:
    def __init__(
        self,
        job: ResolvedJob,
        layout: Layout,
        item: WorkItem,
        scratch: Path,
        input_uri: str,
        *,
        stale_errors: bool = True,
    ) -> None:
        """``stale_errors``: an errors file of this item may be stored (from an earlier run)."""
        self.layout, self.item, self.input_uri = layout, item, input_uri
        self.stale_errors = stale_errors
        self.key = item_output_key(job, layout, item)
        self._scratch = scratch
        self._memory: list[bytes] = []
        self._memory_bytes = 0
        self._file: BinaryIO | None = None
        self._parquet: pq.ParquetWriter | None = None
        self.errors: list[str] = []
        self.records = 0
        self.failed = 0
        self.failure_reasons: list[str] = []

    @property
    def path(self) -> Path:
        """The scratch file of an output too big to keep in memory (or of Parquet output)."""
        return self._scratch / f"item-{self.item.ordinal:08d}.out"

    def write(self, encoded: Encoded, predicted: int) -> str | None:
        """Append a batch's output; returns a reason when the whole batch had to be rejected."""
        self.records += predicted
        if self.key is None:
            return None
        if encoded.table is not None:
            return self._write_table(encoded.table)
        if self._file is None and self._memory_bytes + len(encoded.data) <= MEMORY_LIMIT:
            self._memory.append(encoded.data)
            self._memory_bytes += len(encoded.data)
            return None
        if self._file is None:
            self._file = self.path.open("wb")
            self._file.writelines(self._memory)
            self._memory.clear()
        self._file.write(encoded.data)
        return None

    def _write_table(self, table: pa.Table) -> str | None:
        import pyarrow as pa  # noqa: PLC0415 (lazy: see kbt.frames)
        import pyarrow.parquet as pq  # noqa: PLC0415 (lazy: see kbt.frames)

        if self._parquet is None:
            self._parquet = pq.ParquetWriter(self.path, table.schema)
        try:
            table = table.cast(self._parquet.schema)
        except (pa.ArrowInvalid, pa.ArrowTypeError, ValueError) as exc:
            return f"prediction columns changed type within the object: {exc}"
        self._parquet.write_table(table)
        return None

    def error(self, failure: Failure) -> None:
        self.failed += 1
        self.records += 1
        self.failure_reasons.append(failure.reason)
        entry: dict[str, Any] = {"object": self.input_uri, "record": failure.record, "reason": failure.reason}
        if failure.offset >= 0:
            entry["offset"] = failure.offset
        if self.item.is_split:
            entry["part"] = self.item.part
        self.errors.append(json.dumps(entry))

    def commit(self) -> dict[str, Any]:
        """Upload output and errors; returns the item's done-marker, for ``kbt.runner.done`` to
        store once they are stored."""
        store = self.layout.store
        if self._file is not None:
            self._file.close()
        if self._parquet is not None:
            self._parquet.close()
        if self.key is not None:
            if self._file is not None or self._parquet is not None:
                store.put_file(self.key, self.path)
                self.path.unlink()
            else:
                store.put(self.key, b"".join(self._memory))
        errors_key = self.save_errors()
        marker = {
            "ordinal": self.item.ordinal,
            "name": self.item.name,
            "part": self.item.part,
            "records": self.records,
            "failed": self.failed,
            "bytes": self.item.weight,
            "output": self.key,
            "errors": errors_key,
        }
        return marker

    def save_errors(self) -> str | None:
        """Write the item's errors file (or remove a stale one); its key, None when no record failed."""
        errors_key = self.layout.errors_key(self.item)
        if self.errors:
            self.layout.store.put(errors_key, ("\n".join(self.errors) + "\n").encode())
            self.stale_errors = True
            return errors_key
        if self.stale_errors:
            self.layout.store.delete(errors_key)
            self.stale_errors = False
        return None

    def discard(self) -> None:
        self._memory.clear()
        if self._file is not None:
            self._file.close()
        if self._parquet is not None:
            self._parquet.close()
        self.path.unlink(missing_ok=True)
