"""List a job's input objects: an S3Prefix (every object under it) or a SageMaker ManifestFile.

A manifest is a JSON array ``[{"prefix": "s3://bucket/p/"}, "key1", "sub/key2", ...]``; each
entry names the object ``prefix + entry``. Every object gets a *name*: its key relative to the
input folder (S3Prefix) or the manifest entry, which output names are built from
(``<name>.out``). Objects under the job's output prefix are never inputs.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from kbt.api.models import BatchTransformJobSpec, S3DataType
from kbt.runner.errors import InputError
from kbt.storage import ObjectNotFound, S3Settings, Store, open_location

HEAD_THREADS = 16


@dataclass(frozen=True)
class InputObject:
    key: str
    name: str
    size: int
    version: str = ""  # ETag (S3) or modification time (local): see kbt.storage.ObjectInfo


def s3_settings(spec: BatchTransformJobSpec) -> S3Settings:
    return S3Settings(
        spec.s3.endpointUrl, spec.s3.addressingStyle, spec.region, kms_key_id=spec.transformOutput.kmsKeyId
    )


def _folder(prefix: str) -> str:
    """The folder part of a key prefix: names are relative to it (``p/data`` -> ``p/``)."""
    return prefix[: prefix.rfind("/") + 1]


def list_inputs(spec: BatchTransformJobSpec) -> tuple[Store, list[InputObject]]:
    """The input store and its objects sorted by key; InputError when there are none."""
    source = spec.transformInput.dataSource.s3DataSource
    settings = s3_settings(spec)
    if source.s3DataType == S3DataType.MANIFEST_FILE:
        store, objects = _manifest_objects(source.s3Uri, settings)
    else:
        store, prefix = open_location(source.s3Uri, settings)
        folder = _folder(prefix)
        objects = [
            InputObject(o.key, o.key[len(folder) :], o.size, o.version) for o in store.list_objects(prefix)
        ]
    out_store, out_prefix = open_location(spec.transformOutput.s3OutputPath, settings)
    if out_store.uri("") == store.uri("") and out_prefix:
        output_folder = out_prefix.rstrip("/") + "/"
        objects = [o for o in objects if not o.key.startswith(output_folder)]
    if not objects:
        raise InputError(f"no input objects found at {source.s3Uri}")
    return store, sorted(objects, key=lambda o: o.key)


def _manifest_objects(uri: str, settings: S3Settings) -> tuple[Store, list[InputObject]]:
    manifest_store, manifest_key = open_location(uri, settings)
    try:
        entries = json.loads(manifest_store.read(manifest_key))
    except ObjectNotFound:
        raise InputError(f"manifest file {uri} does not exist") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"manifest file {uri} is not valid JSON: {exc}") from None
    if (
        not isinstance(entries, list)
        or not entries
        or not isinstance(entries[0], dict)
        or not isinstance(entries[0].get("prefix"), str)
    ):
        raise InputError(f'manifest file {uri}: expected [{{"prefix": "s3://bucket/prefix/"}}, "key", ...]')
    store, prefix = open_location(entries[0]["prefix"], settings)
    names = entries[1:]
    for position, name in enumerate(names, start=1):
        if not isinstance(name, str) or not name:
            raise InputError(f"manifest file {uri}: entry {position} is {name!r}, expected a key")

    def stat(name: str) -> InputObject:
        key = prefix + name
        try:
            info = store.stat(key)
            return InputObject(key, name, info.size, info.version)
        except ObjectNotFound:
            raise InputError(
                f"manifest file {uri}: entry {name!r}: {store.uri(key)} does not exist"
            ) from None

    with ThreadPoolExecutor(HEAD_THREADS) as pool:
        return store, list(pool.map(stat, dict.fromkeys(names)))
