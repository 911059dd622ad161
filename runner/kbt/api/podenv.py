"""Environment variables of a shard pod: every name the operator, ``kbt run`` and the runner share.

Each name is declared once here. The operator's Job builder sets the first group on every shard
container; ``kbt run`` sets the second on its worker processes; the runner reads them all through
``kbt.settings.RunnerSettings`` (and the shard index through ``kbt.api.shardmap.shard_index``).
"""

from __future__ import annotations

# Set by Kubernetes on every pod of an Indexed Job: the pod's completion index.
COMPLETION_INDEX = "JOB_COMPLETION_INDEX"

# Set by the operator (job_builder) on shard containers.
SHARD_MAP = "KBT_SHARD_MAP"  # retry Jobs only: completion index i runs shard SHARD_MAP[i] ("3,7")
LOG_FORMAT = "KBT_LOG_FORMAT"  # "json" in pods, "console" (default) elsewhere
PROGRESS_CONFIGMAP = "KBT_PROGRESS_CONFIGMAP"  # ConfigMap whose key shard-<index> a shard patches
NAMESPACE = "KBT_NAMESPACE"  # the pod's namespace (downward API), where that ConfigMap lives
POD_NAME = "KBT_POD_NAME"  # the pod's own name (downward API)
HOME = "HOME"  # the writable scratch volume: libraries cache there
TMPDIR = "TMPDIR"  # the writable /tmp volume (the root filesystem is read-only)
S3_ENDPOINT = "AWS_ENDPOINT_URL_S3"  # spec.s3.endpointUrl, for boto3 and the runner
REGION = "AWS_REGION"  # spec.region (boto3 reads both spellings)
DEFAULT_REGION = "AWS_DEFAULT_REGION"

# Set by `kbt run` on its worker processes (and by tests); unset in pods.
PROGRESS_STREAM = "KBT_PROGRESS_STREAM"  # "1": print progress as `KBT-PROGRESS {json}` lines on stdout
PROGRESS_INTERVAL = "KBT_PROGRESS_INTERVAL"  # seconds between progress reports (default 5)
TERMINATION_LOG = "KBT_TERMINATION_LOG"  # where the one-line exit reason goes (default /dev/termination-log)
# Intra-/inter-op thread counts of torch (OpenMP, MKL) and TensorFlow: with several workers `kbt run`
# gives each its share of the cores, unless the user's environment sets them.
THREAD_LIMITS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")

# Tuning knobs a user may set on the runner (pod environment or shell).
LOG_LEVEL = "KBT_LOG_LEVEL"  # default INFO
SCRATCH_DIR = "KBT_SCRATCH_DIR"  # local scratch root (default /scratch when writable, else the temp dir)
SPLIT_SIZE_MB = "KBT_SPLIT_SIZE_MB"  # objects larger than this are split into several work items (64)
S3_ATTEMPTS = "KBT_S3_ATTEMPTS"  # attempts of one S3 request before the shard gives up (6)
