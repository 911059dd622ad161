"""Names shared by the operator (which sets them) and the kubectl plugin (which reads them).

Every shard pod carries ``JOB_NAME_LABEL`` with its BatchTransformJob's name; Kubernetes itself
adds ``COMPLETION_INDEX_LABEL`` (and the annotation of the same name) to pods of Indexed Jobs.
Shards report progress into one ConfigMap per job, one key per shard (``kbt.api.progress``).
"""

from __future__ import annotations

from kbt.api.models import API_GROUP
from kbt_operator.naming import OBJECT_NAME_LIMIT, bounded, label_value

JOB_NAME_LABEL = f"{API_GROUP}/job-name"
COMPLETION_INDEX_LABEL = "batch.kubernetes.io/job-completion-index"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "kbt-operator"

PROGRESS_CONFIGMAP_PREFIX = "kbt-progress-"


def job_selector(job_name: str) -> str:
    """The label selector of every shard pod of one BatchTransformJob."""
    return f"{JOB_NAME_LABEL}={label_value(job_name)}"


def progress_configmap_name(job_name: str) -> str:
    """The ConfigMap that shards of `job_name` write their progress into."""
    return bounded(f"{PROGRESS_CONFIGMAP_PREFIX}{job_name}", OBJECT_NAME_LIMIT)
