"""Batch predictions from a CSV file into a CSV file."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from .config import ProjectConfig
from .data import read_csv, text_columns
from .files import atomic_write_text, refuse_to_replace
from .model import (
    SchemaMismatch,
    check_columns,
    describe,
    load_bundle,
    parse_input,
    predict_parsed,
    resolve_model_dir,
)
from .schema import DROPPED, stray_warnings
from .text import quiet


def predict_file(
    config: ProjectConfig,
    input_path: Path,
    output_path: Path,
    model_ref: str = "production",
    echo: Callable[[str], None] = quiet,
    warn: Callable[[str], None] = quiet,
    force: bool = False,
) -> pd.DataFrame:
    """Write predictions (and class probabilities) for every row of `input_path` to `output_path`.

    Identifier columns the model ignores (e.g. customer_id) are copied to the output to join on.
    Columns the model does not know are ignored with a warning; missing ones are an error.
    Text in a numeric column the model reads leniently (its training data had such strays) is
    read as missing, with a warning naming the column and the count.

    An existing `output_path` is replaced only if it is a predictions file (or empty), or with
    `force`: swapping --input and --output must not replace a data set.
    """
    directory = resolve_model_dir(config.root, model_ref)
    bundle = load_bundle(directory)
    identifiers = {name for name, kind in bundle.features.items() if kind == DROPPED}
    if not force:
        refuse_to_replace(output_path, lambda head: _predictions_file(head, identifiers),
                          "predictions file",
                          "choose another --output, or add --force to replace it")
    frame = read_csv(input_path, text=text_columns(bundle.features))
    missing, extra = check_columns(bundle, frame.columns)
    if missing:
        raise SchemaMismatch(missing, extra)
    if extra:
        warn(f"ignoring column(s) the model does not use: {', '.join(extra)}")

    parsed = parse_input(bundle, frame)
    for line in stray_warnings(input_path, parsed.strays):
        warn(line)
    result = predict_parsed(bundle, parsed.frame)
    kept = [name for name in bundle.features if name in identifiers and name in frame.columns]
    output = frame[kept].reset_index(drop=True)
    output["prediction"] = result["predictions"]
    if result["probabilities"] is not None:
        probabilities = pd.DataFrame(
            result["probabilities"], columns=[f"probability_{c}" for c in bundle.classes]
        )
        output = pd.concat([output, probabilities], axis=1)
    atomic_write_text(Path(output_path), output.to_csv(index=False))
    echo(f"predicted {len(output)} rows with {model_ref} ({describe(bundle)}) from {directory}")
    echo(f"wrote {output_path}")
    return output


def _predictions_file(head: bytes, identifiers: set[str]) -> bool:
    """Whether a file starting with `head` is what predict writes: a `prediction` column, and
    otherwise only class probabilities and identifier columns the model copies through."""
    header = next(csv.reader(head.decode("utf-8", "ignore").splitlines()[:1]), [])
    return "prediction" in header and all(
        name == "prediction" or name.startswith("probability_") or name in identifiers
        for name in header)
