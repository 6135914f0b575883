"""The three protocols' payloads: decoding requests into records, encoding predictions.

* SageMaker ``/invocations`` and KServe v1 ``:predict`` take JSON rows: ``{"instances": [...]}``,
  ``{"inputs": [...] | {column: [...]} | [v2 tensors]}``, a bare list of rows, or one record
  (an object naming one of the model's columns; keys it does not know are ignored, as in rows).
* KServe v2 (Open Inference Protocol) takes tensors: one per column (shape ``[N]`` or
  ``[N, 1]``), or one ``[N, n_features]`` tensor in feature order. It answers every output the
  model offers unless ``outputs`` names some. The binary tensor extension is not supported.
"""

from __future__ import annotations

import math
import uuid
from typing import Any

from .errors import RequestError, type_name
from .records import Columns, Table

NUMERIC_V2 = frozenset({"BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32",
                        "INT64", "FP16", "FP32", "FP64"})
V2_DATATYPES = NUMERIC_V2 | {"BYTES"}
BINARY_UNSUPPORTED = "binary data extension not supported; send tensors as JSON data"


def _rows_to_records(rows: Any, columns: Columns) -> list:
    """Records from a list of objects (column: value) or of lists (values in feature order)."""
    if not isinstance(rows, list):
        raise RequestError(400, f"expected a list of rows, got {type_name(rows)}")
    if not rows:
        raise RequestError(400, "the request holds no rows")
    if all(isinstance(r, dict) for r in rows):
        return rows
    if all(isinstance(r, list) for r in rows):
        width = len(rows[0])
        if any(len(r) != width for r in rows):
            raise RequestError(400, "all rows must have the same number of values")
        names = columns.for_width(width)
        return [dict(zip(names, r, strict=True)) for r in rows]
    raise RequestError(400, "rows must all be objects (column: value) "
                            "or all be lists of values in feature order")


def _columns_to_records(data: dict) -> list:
    """Records from ``{column: [values...]}`` (scalars for a single row)."""
    if not data:
        raise RequestError(400, "the request holds no columns")
    names = list(data)
    values = [v if isinstance(v, list) else [v] for v in data.values()]
    if any(len(v) != len(values[0]) for v in values):
        raise RequestError(400, "all columns must hold the same number of values")
    return [dict(zip(names, row, strict=True)) for row in zip(*values, strict=True)]


def decode_rows(doc: Any, columns: Columns) -> Table:
    """The table of the JSON bodies that /invocations and KServe v1 accept."""
    if isinstance(doc, list):
        return columns.from_records(_rows_to_records(doc, columns))
    if not isinstance(doc, dict):
        raise RequestError(400, f"expected a JSON object or list, got {type_name(doc)}")
    if "instances" in doc:
        return columns.from_records(_rows_to_records(doc["instances"], columns))
    if "inputs" in doc:
        inputs = doc["inputs"]
        if isinstance(inputs, dict):
            return columns.from_records(_columns_to_records(inputs))
        if isinstance(inputs, list) and inputs and all(
                isinstance(t, dict) and "data" in t and "name" in t for t in inputs):
            return decode_v2(doc, columns)
        return columns.from_records(_rows_to_records(inputs, columns))
    if doc.keys() & columns.known:  # one record: other keys are ignored, as in "instances"
        return columns.from_records([doc])
    raise RequestError(400, 'expected {"instances": [...]}, {"inputs": ...}, a list of rows '
                            "or one record")


# ------------------------------------------------------------------------------ KServe v2


def _flatten(data: list) -> list:
    """Flatten nested lists (v2 allows row-major nesting), without recursion."""
    flat: list = []
    stack = [iter(data)]
    while stack:
        for value in stack[-1]:
            if isinstance(value, list):
                stack.append(iter(value))
                break
            flat.append(value)
        else:
            stack.pop()
    return flat


def _tensor(tensor: Any, index: int) -> tuple[str, list[int], list]:
    """Check one v2 input tensor; (name, shape, flat data)."""
    if not isinstance(tensor, dict):
        raise RequestError(400, f"inputs[{index}] must be an object")
    name = tensor.get("name")
    if not isinstance(name, str) or not name:
        raise RequestError(400, f"inputs[{index}] needs a name")
    parameters = tensor.get("parameters")
    if isinstance(parameters, dict) and "binary_data_size" in parameters:
        raise RequestError(400, BINARY_UNSUPPORTED)
    shape = tensor.get("shape")
    if (not isinstance(shape, list) or not shape
            or not all(type(d) is int and d >= 0 for d in shape)):
        raise RequestError(400, f"input {name!r} needs a shape: a list of non-negative integers")
    datatype = tensor.get("datatype")
    if not isinstance(datatype, str) or datatype not in V2_DATATYPES:
        shown = repr(datatype) if isinstance(datatype, str) else type_name(datatype)
        raise RequestError(400, f"input {name!r} has datatype {shown[:60]}; "
                                f"expected one of {', '.join(sorted(V2_DATATYPES))}")
    data = tensor.get("data")
    if not isinstance(data, list):
        raise RequestError(400, f"input {name!r} needs data: a list of values")
    kinds = set(map(type, data))
    if list in kinds:
        data = _flatten(data)
        kinds = set(map(type, data))
    if len(data) != math.prod(shape):
        raise RequestError(400, f"input {name!r} has shape {shape} but {len(data)} values")
    if datatype in NUMERIC_V2 and str in kinds:
        raise RequestError(400, f"input {name!r} has datatype {datatype} but holds strings; "
                                "use BYTES")
    return name, shape, data


def decode_v2(doc: Any, columns: Columns) -> Table:
    """The table of a v2 inference request."""
    if not isinstance(doc, dict):
        raise RequestError(400, "expected a JSON object with inputs")
    inputs = doc.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise RequestError(400, "inputs must be a non-empty list of tensors")
    tensors = [_tensor(t, i) for i, t in enumerate(inputs)]
    name, shape, data = tensors[0]
    if len(tensors) == 1 and len(shape) == 2 and not (name in columns.known and shape[1] == 1):
        rows, width = shape
        names = columns.for_width(width)
        return columns.from_columns({n: data[i::width] for i, n in enumerate(names)}, rows)
    names = []
    for name, shape, data in tensors:
        if name not in columns.known:
            from ...suggest import did_you_mean

            raise RequestError(400, f"unknown input {name!r}"
                                    f"{did_you_mean(name, columns.inputs)}; send the columns "
                                    f"{', '.join(columns.inputs)} as tensors of shape [N], "
                                    "or one tensor of shape [N, n_features]")
        if len(shape) > 2 or (len(shape) == 2 and shape[1] != 1):
            raise RequestError(400, f"input {name!r} must have shape [N], got {shape}")
        if len(data) != len(tensors[0][2]):
            raise RequestError(400, f"input {name!r} has {len(data)} values, "
                                    f"input {tensors[0][0]!r} has {len(tensors[0][2])}")
        names.append(name)
    if len(set(names)) != len(names):
        raise RequestError(400, "each input column may appear only once")
    return columns.from_columns({name: data for name, _, data in tensors}, len(tensors[0][2]))


def requested_outputs(doc: dict, offered: tuple[str, ...]) -> list[str]:
    """The outputs a v2 request asks for: every output the model offers when it names none."""
    outputs = doc.get("outputs")
    if outputs is None:
        return list(offered)
    if not isinstance(outputs, list) or not all(
            isinstance(o, dict) and isinstance(o.get("name"), str) for o in outputs):
        raise RequestError(400, 'outputs must be a list of {"name": ...} objects')
    names = [o["name"] for o in outputs]
    for name in names:
        if name == "predict_proba" and name not in offered:
            raise RequestError(400, "predict_proba is only available for classification models")
        if name not in offered:
            raise RequestError(400, f"unknown output {name[:60]!r}; this model offers "
                                    f"{', '.join(offered)}")
    return names or list(offered)


def v2_datatype(values: list) -> str:
    sample = next((v for v in values if v is not None), None)
    if isinstance(sample, bool):
        return "BOOL"
    if isinstance(sample, int):
        return "INT64"
    if isinstance(sample, str):
        return "BYTES"
    return "FP64"


def v2_response(doc: dict, model_name: str, version: str, wanted: list[str],
                result: dict) -> dict:
    """The v2 inference response for `result` (``{"predictions", "probabilities"}``)."""
    rows = len(result["predictions"])
    outputs = []
    for name in wanted:
        if name == "predict":
            data = result["predictions"]
            outputs.append({"name": name, "shape": [rows], "datatype": v2_datatype(data),
                            "data": data})
        else:
            probabilities = result["probabilities"] or []
            width = len(probabilities[0]) if probabilities else 0
            outputs.append({"name": name, "shape": [rows, width], "datatype": "FP64",
                            "data": [p for row in probabilities for p in row]})
    request_id = doc.get("id")
    return {"model_name": model_name, "model_version": version,
            "id": request_id if isinstance(request_id, str) and request_id else uuid.uuid4().hex,
            "outputs": outputs}
