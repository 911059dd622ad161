"""The operator's logging: kbt's structlog setup for its own and kopf's records, minus chatter.

``KBT_LOG_FORMAT=json`` (the chart's default) makes every line JSON, kopf's included; kopf's
per-event handler reports (``Handler 'forget_deleted' succeeded.``, ``Creation is processed:
...``) are demoted to DEBUG, so INFO shows what changed and not every watch event.
"""

from __future__ import annotations

import logging
import re

from kbt import log

CHATTER = re.compile(r"^(Handler '[^']+' succeeded\.|\w+ is processed: \d+ succeeded; \d+ failed\.)$")
KOPF_OBJECT_LOGGER = "kopf.objects"


class DemoteChatter(logging.Filter):
    """Turns kopf's routine INFO handler reports into DEBUG records (dropped unless DEBUG is on)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO or not CHATTER.match(record.getMessage()):
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger().isEnabledFor(logging.DEBUG)


DEMOTE_CHATTER = DemoteChatter()


def configure_logging() -> None:
    """Log like the runner (KBT_LOG_FORMAT, KBT_LOG_LEVEL) with kopf's chatter at DEBUG."""
    log.configure()
    logging.getLogger(KOPF_OBJECT_LOGGER).addFilter(DEMOTE_CHATTER)
