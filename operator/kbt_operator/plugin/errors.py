"""Exit codes of `kubectl btj` and the error that carries one, with a message for the user."""

from __future__ import annotations

from enum import IntEnum


class PluginExit(IntEnum):
    OK = 0
    ERROR = 1  # an unexpected API or S3 error
    USAGE = 2  # bad arguments, or a name that matches jobs in several namespaces
    NOT_FOUND = 3  # no such BatchTransformJob (or its API is not installed)
    FORBIDDEN = 4  # the API server or S3 denied access
    NOT_READY = 5  # the job has not started yet, or has no logs yet
    INVALID_STATE = 6  # the action does not apply to the job's state (e.g. retry when not Failed)
    UNREACHABLE = 7  # no usable kubeconfig, or the API server cannot be reached


class PluginError(Exception):
    """A failure to report as one clear line on stderr, exiting with `code`."""

    def __init__(self, message: str, code: PluginExit = PluginExit.ERROR) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
