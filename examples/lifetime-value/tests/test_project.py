"""The project's layout and sample data are what its code expects."""

import csv
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_spec_names_the_label_column_of_every_dataset():
    spec = yaml.safe_load((ROOT / "mlscaffold.yaml").read_text())
    for split in ("train", "validation", "test"):
        with (ROOT / "datasets" / f"{split}.csv").open(newline="") as handle:
            header = next(csv.reader(handle))
        assert spec["label"] in header, f"{split}.csv lacks the label column {spec['label']!r}"


def test_model_folders_exist():
    for stage in ("staging", "production"):
        assert (ROOT / "models" / stage).is_dir()
