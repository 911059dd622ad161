"""Post Kubernetes events about BatchTransformJobs (best effort: a lost event never fails work)."""

from __future__ import annotations

import logging
import uuid

from kbt_operator.events import Event, event_manifest
from kbt_operator.kube import ApiError, KubeApi
from kbt_operator.owned import ObjectRef
from kbt_operator.syncer import utc_now

logger = logging.getLogger(__name__)


class EventRecorder:
    def __init__(self, api: KubeApi) -> None:
        self._api = api

    async def post(self, involved: ObjectRef, event: Event) -> None:
        manifest = event_manifest(involved, event, utc_now(), uuid.uuid4().hex[:16])
        try:
            await self._api.create(manifest)
        except ApiError as exc:
            logger.warning("event %s for %s not posted: %s", event.reason, involved.name, exc.message)
