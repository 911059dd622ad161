"""Why a shard stops: runner exceptions and their mapping onto the exit-code contract."""

from __future__ import annotations

from pydantic import ValidationError

from kbt.api.exitcodes import ExitCode
from kbt.storage import ObjectNotFound, StorageError, StorageUnavailable


class RunnerError(Exception):
    """A shard failure with a known exit code; the message is the one-line reason."""

    exit_code = ExitCode.UNEXPECTED


class ConfigError(RunnerError):
    """The job cannot run as configured (bad filter, unsupported combination)."""

    exit_code = ExitCode.CONFIG_ERROR


class InputError(RunnerError):
    """The input is unusable for every record (no inputs, unknown format, schema mismatch)."""

    exit_code = ExitCode.INPUT_ERROR


class ErrorThresholdExceeded(RunnerError):
    """More bad records than errorThreshold allows."""

    exit_code = ExitCode.ERROR_THRESHOLD


class Stopped(RunnerError):
    """SIGTERM arrived (job stopped, pod evicted): not a failure of the data."""

    exit_code = ExitCode.STOPPED


def exit_code_for(exc: BaseException) -> ExitCode:
    """The exit code a shard reports for ``exc`` (see kbt.api.exitcodes)."""
    from kbt.flavors.base import ModelLoadError  # noqa: PLC0415 (cycle: kbt.flavors imports this)
    from kbt.flavors.errors import DeviceOutOfMemoryError, InputSchemaError  # noqa: PLC0415 (cycle: kbt.flavors imports this)

    if isinstance(exc, RunnerError):
        return exc.exit_code
    if isinstance(exc, ValidationError):
        return ExitCode.CONFIG_ERROR
    if isinstance(exc, StorageUnavailable | DeviceOutOfMemoryError | MemoryError):
        return ExitCode.RETRIABLE
    if isinstance(exc, ObjectNotFound | InputSchemaError):
        return ExitCode.INPUT_ERROR
    if isinstance(exc, StorageError):
        return ExitCode.CONFIG_ERROR
    if isinstance(exc, ModelLoadError):
        return ExitCode.MODEL_LOAD_ERROR
    return ExitCode.UNEXPECTED


def one_line(exc: BaseException) -> str:
    """The termination-message form of ``exc``: one line, bounded length."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if not isinstance(exc, RunnerError) and exit_code_for(exc) == ExitCode.UNEXPECTED:
        text = f"{type(exc).__name__}: {text}"
    return text[:1000]
