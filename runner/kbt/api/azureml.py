"""Which jobs follow Azure ML batch-deployment semantics, decided once for every stage.

A job is **Azure-shaped** when its model is a scoring script (``model.flavor: custom``, Azure's
``code_configuration.scoring_script``) and the job does not ask for records to be framed out of
its input files (``transformInput.splitType: None``, the default): that is the job an Azure batch
deployment runs, a script handed the input files. Azure-shaped jobs get Azure's defaults:

- ``miniBatchMode: files``: ``run()`` receives a list of file paths (Azure: "The method receives
  a list of file paths as a parameter"), ``miniBatchSize`` counts files and each file comes whole
  (no ``maxPayloadInMB`` bound); other jobs get ``records`` (a DataFrame of up to ``miniBatchSize``
  rows for tabular input).
- With ``outputAction: appendRow`` and no ``accept``: Azure's append_row file, each row's fields
  separated by one space and no header (Azure: "Although pandas DataFrame may contain column
  names, they are not included in the output file").

An explicit ``miniBatchMode`` or ``accept`` always wins.
"""

from __future__ import annotations

from kbt.api.models import BatchTransformJobSpec, Flavor, MiniBatchMode, ModelSpec, OutputAction, SplitType

APPEND_ROW_DELIMITER = " "  # Azure's append_row file: space-separated, no header


def is_azure_shaped(spec: BatchTransformJobSpec, model: ModelSpec) -> bool:
    """A scoring script over unframed input files: the job an Azure batch deployment runs."""
    return model.flavor == Flavor.CUSTOM and spec.transformInput.splitType == SplitType.NONE


def mini_batch_mode(spec: BatchTransformJobSpec, model: ModelSpec) -> MiniBatchMode:
    """``spec.miniBatchMode``, else ``files`` for Azure-shaped jobs and ``records`` otherwise."""
    if spec.miniBatchMode is not None:
        return spec.miniBatchMode
    return MiniBatchMode.FILES if is_azure_shaped(spec, model) else MiniBatchMode.RECORDS


def azure_append_row(spec: BatchTransformJobSpec, model: ModelSpec) -> bool:
    """Whether the job writes Azure's append_row layout (space-separated rows, no header)."""
    output = spec.transformOutput
    return (
        output.outputAction == OutputAction.APPEND_ROW
        and output.accept is None
        and is_azure_shaped(spec, model)
    )


def whole_files(spec: BatchTransformJobSpec, model: ModelSpec) -> bool:
    """Whether a mini-batch is ``miniBatchSize`` whole input files (Azure: "Batch deployments
    distribute work at the file level"): a scoring script in ``files`` mode."""
    return model.flavor == Flavor.CUSTOM and mini_batch_mode(spec, model) == MiniBatchMode.FILES
