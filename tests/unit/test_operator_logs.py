"""#16.8: the operator logs JSON when KBT_LOG_FORMAT=json (kopf's records too), without chatter."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from kbt_operator.logs import DEMOTE_CHATTER, KOPF_OBJECT_LOGGER, configure_logging


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.getLogger(KOPF_OBJECT_LOGGER).removeFilter(DEMOTE_CHATTER)


def _logged(
    level: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> list[dict[str, str]]:
    """The JSON lines of kopf's and the operator's typical records, configured at `level`."""
    monkeypatch.setenv("KBT_LOG_FORMAT", "json")
    monkeypatch.setenv("KBT_LOG_LEVEL", level)
    configure_logging()
    kopf = logging.getLogger(KOPF_OBJECT_LOGGER)
    kopf.info("Handler 'forget_deleted' succeeded.")
    kopf.info("Creation is processed: 1 succeeded; 0 failed.")
    kopf.info("Handler 'reconcile_job' failed temporarily: Model m not found")
    logging.getLogger("kbt_operator.handlers").info("kbt operator started: all namespaces")
    return [json.loads(line) for line in capsys.readouterr().err.splitlines()]


def test_json_lines_for_kopf_and_the_operator_without_handler_chatter(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], restore_logging: None
) -> None:
    lines = _logged("INFO", monkeypatch, capsys)
    assert [(line["logger"], line["level"], line["event"]) for line in lines] == [
        (KOPF_OBJECT_LOGGER, "info", "Handler 'reconcile_job' failed temporarily: Model m not found"),
        ("kbt_operator.handlers", "info", "kbt operator started: all namespaces"),
    ]


def test_handler_chatter_is_kept_at_debug(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], restore_logging: None
) -> None:
    levels = {line["event"]: line["level"] for line in _logged("DEBUG", monkeypatch, capsys)}
    assert levels["Handler 'forget_deleted' succeeded."] == "debug"
    assert levels["Creation is processed: 1 succeeded; 0 failed."] == "debug"
    assert levels["Handler 'reconcile_job' failed temporarily: Model m not found"] == "info"
