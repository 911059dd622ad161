"""Exit codes of a shard process: the contract with the operator's pod failure policy.

Non-retriable codes fail the Job index at once (retrying cannot help); everything else,
including SIGKILL/OOM (137) and the retriable code, is retried up to backoffLimitPerIndex.
A one-line reason is always written to the pod termination message.
"""

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    UNEXPECTED = 1  # a bug or an unclassified error: retried
    CONFIG_ERROR = 2  # invalid spec, missing settings: non-retriable
    INPUT_ERROR = 3  # input unusable for every record (schema mismatch, unknown format): non-retriable
    ERROR_THRESHOLD = 4  # too many bad records: non-retriable
    MODEL_LOAD_ERROR = 5  # model cannot be fetched/loaded: non-retriable
    STOPPED = 6  # stop requested (SIGTERM while stopping): not a failure of the data
    RETRIABLE = 75  # transient (S3 unavailable after retries, OOM backoff exhausted): retried


NON_RETRIABLE = frozenset(
    {ExitCode.CONFIG_ERROR, ExitCode.INPUT_ERROR, ExitCode.ERROR_THRESHOLD, ExitCode.MODEL_LOAD_ERROR}
)
TERMINATION_LOG = "/dev/termination-log"  # the kubelet's default terminationMessagePath
