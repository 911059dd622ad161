"""The `kbt` command line: validate manifests, generate CRDs, run jobs locally and in pods."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Annotated

import typer

import kbt.cli_run
from kbt.api.crd import render_crds, write_crds
from kbt.api.instance_types import CATALOG_ENV, CatalogError, known_names
from kbt.api.manifest import ManifestError, load_documents, sagemaker_differences, validate_document

app = typer.Typer(
    name="kbt",
    help="Kubernetes Batch Transform: score every record under a prefix with your model.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _print_version(requested: bool) -> None:
    if requested:
        from importlib.metadata import version  # noqa: PLC0415 (~30 ms: only --version needs it)

        typer.echo(f"kbt {version('kbt')}")
        raise typer.Exit()


@app.callback()
def _main(
    show_version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print kbt's version and exit."
        ),
    ] = False,
) -> None:
    pass


@app.command()
def validate(
    files: Annotated[list[Path], typer.Argument(help="Manifest files (multi-document YAML).")],
    instance_types: Annotated[
        Path | None,
        typer.Option(
            "--instance-types",
            envvar=CATALOG_ENV,
            help=(
                "The cluster's instance-type catalog file (chart value instanceTypes): "
                "its types are known too."
            ),
        ),
    ] = None,
) -> None:
    """Check manifests offline against the same schema and instance types the cluster uses."""
    try:
        known = known_names(instance_types)
    except CatalogError as exc:
        typer.secho(f"✗ {exc}", fg="red", err=True)
        raise typer.Exit(1) from None
    failed = False
    for path in files:
        try:
            documents = load_documents(path)
        except ManifestError as exc:
            typer.secho(f"✗ {exc}", fg="red", err=True)
            failed = True
            continue
        if not documents:
            typer.secho(f"✗ {path}: no manifest documents found", fg="red", err=True)
            failed = True
        for doc in documents:
            issues = validate_document(doc, known)
            name = doc.data.get("metadata", {}).get("name", "?") if isinstance(doc.data, dict) else "?"
            label = f"{path} [document {doc.index + 1}] {doc.kind or '?'}/{name}"
            if issues:
                failed = True
                typer.secho(f"✗ {label}: {len(issues)} error(s)", fg="red", err=True)
                for issue in issues:
                    typer.echo(f"  {issue.render(str(path))}", err=True)
            else:
                typer.secho(f"✓ {label} is valid", fg="green")
                for warning in sagemaker_differences(doc):
                    typer.secho(f"  ⚠ {warning.render(str(path))}", fg="yellow", err=True)
    raise typer.Exit(1 if failed else 0)


@app.command()
def crds(
    output_dir: Annotated[Path | None, typer.Option("--output-dir", "-o", help="Write files here.")] = None,
    check: Annotated[bool, typer.Option(help="Fail if files in --output-dir differ.")] = False,
) -> None:
    """Print (or write) the CustomResourceDefinitions generated from the API models."""
    if output_dir is None:
        typer.echo("---\n".join(render_crds().values()), nl=False)
        return
    if check:
        stale = [
            n
            for n, text in render_crds().items()
            if not (output_dir / n).is_file() or (output_dir / n).read_text() != text
        ]
        if stale:
            typer.secho(
                f"CRDs out of date in {output_dir}: {', '.join(stale)}; run `make crds`", fg="red", err=True
            )
            raise typer.Exit(1)
        return
    for path in write_crds(output_dir):
        typer.echo(f"wrote {path}")


# `run` and `shard` live with the runner; registered here so `kbt --help` lists them.
kbt.cli_run.register(app)

# The imports above leave ~40k long-lived objects (typer, pydantic's schemas) and a job imports
# its model's framework (and pandas, for tabular data) next: the cyclic GC would scan them again
# in every full collection of that start-up (frozen here, a one-record `kbt run` spends ~100 ms
# less in the GC).
# Frozen objects are never collected: only what is alive now, this start-up's module state.
gc.freeze()
