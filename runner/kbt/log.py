"""Structured logging for kbt: human-readable console output locally, JSON lines in pods.

``configure(format)`` sets up structlog and the standard ``logging`` module together, so log
records from libraries and from ``get_logger(name)`` come out in one format. The format is
``"json"`` or ``"console"``; by default it is taken from ``KBT_LOG_FORMAT`` (the operator sets
``json`` on shard pods). Extra processors (e.g. the shard's log archive) can tap every line.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any, TextIO

import structlog

from kbt.settings import RunnerSettings

LineTap = Callable[[str], None]
_taps: list[LineTap] = []
_FORMATS = ("console", "json")


class _TapHandler(logging.StreamHandler[TextIO]):
    """Writes formatted lines to the stream and hands each to the registered taps."""

    def emit(self, record: logging.LogRecord) -> None:
        super().emit(record)
        if _taps:
            line = self.format(record)
            for tap in list(_taps):
                tap(line)


def configure(format: str | None = None, level: int | str | None = None) -> None:
    """(Re)configure logging for this process; ``format`` is "console" or "json"."""
    settings = RunnerSettings.from_env()
    chosen = (format or settings.log_format).lower()
    if chosen not in _FORMATS:
        raise ValueError(f"unknown log format {chosen!r}: expected one of {', '.join(_FORMATS)}")
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if chosen == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info if chosen == "json" else _identity,
            renderer,
        ],
    )
    handler = _TapHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _TapHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level or settings.log_level)
    for noisy in ("botocore", "boto3", "urllib3", "s3transfer"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def ensure_configured() -> None:
    """Configure with the defaults unless ``configure`` already ran in this process."""
    if not any(isinstance(h, _TapHandler) for h in logging.getLogger().handlers):
        configure()


def _identity(_: Any, __: str, event: Any) -> Any:
    return event


def add_tap(tap: LineTap) -> None:
    """Receive every formatted log line (used to archive a shard's log)."""
    _taps.append(tap)


def remove_tap(tap: LineTap) -> None:
    if tap in _taps:
        _taps.remove(tap)


def get_logger(name: str) -> Any:
    """A structlog logger bound to ``name``: ``log.info("event", key=value)``."""
    return structlog.stdlib.get_logger(name)
