"""SQL over Open Inference Protocol (KServe v2, Seldon Core 2) request and response bodies.

A tensor is ``{"name", "shape", "datatype", "data"}`` in the REST/JSON form
(KServe v2), or ``{"name", "shape", "datatype", "contents": {"fp64Contents":
[...]}}`` in the protobuf JSON mapping of ``ModelInferResponse`` that Seldon
Core 2's Kafka tools print (``bytesContents`` are base64). Only the first row
of a tensor is read: vdrift stores one prediction per request, so a tensor
whose shape says more than one row is reported by :func:`batch_rows`.

All functions take SQL expressions (of type JSON) and return SQL expressions;
the names they compare with are the fixed :data:`~.common.SCORE_NAMES`.
"""

from __future__ import annotations

from .common import SCORE_NAMES, scalar_text

_SCORES = "[" + ", ".join(f"'{n}'" for n in SCORE_NAMES) + "]"
_CONTENTS = ("fp64Contents", "fp32Contents", "int64Contents", "intContents", "uint64Contents",
             "uintContents", "boolContents")


def tensors(body: str, key: str) -> str:
    """The tensors of ``body``'s ``inputs`` or ``outputs`` as a JSON[] list (empty when absent)."""
    return f"CAST(json_extract({body}, '$.{key}[*]') AS JSON[])"


def values(tensor: str) -> str:
    """The first row of ``tensor``'s values as a JSON array (``data`` or protobuf ``contents``)."""
    contents = ", ".join(f"json_extract({tensor}, '$.contents.{c}')" for c in _CONTENTS)
    raw = (f"coalesce(json_extract({tensor}, '$.data'), {contents}, "
           f"to_json(list_transform(CAST(json_extract({tensor}, '$.contents.bytesContents[*]') AS JSON[]), "
           f"lambda x: try(decode(from_base64(json_extract_string(x, '$')))))))")
    return (f"CASE WHEN json_type(json_extract({raw}, '$[0]')) = 'ARRAY' "
            f"THEN json_extract({raw}, '$[0]') ELSE {raw} END")


def batch_rows(tensor: str) -> str:
    """The rows ``tensor``'s shape announces (its first dimension when it has two or more), else 1."""
    return (f"CASE WHEN json_array_length(json_extract({tensor}, '$.shape')) >= 2 "
            f"THEN TRY_CAST(json_extract_string({tensor}, '$.shape[0]') AS BIGINT) ELSE 1 END")


def prediction_tensor(body: str) -> str:
    """The first output tensor whose name is not a score name (else the first output)."""
    outs = tensors(body, "outputs")
    return (f"coalesce(list_filter({outs}, lambda t: NOT list_contains({_SCORES}, "
            f"lower(json_extract_string(t, '$.name'))))[1], {outs}[1])")


def score_tensor(body: str) -> str:
    """The first output tensor named like a score (score, probability, predict_proba, ...), or NULL."""
    outs = tensors(body, "outputs")
    return f"list_filter({outs}, lambda t: list_contains({_SCORES}, lower(json_extract_string(t, '$.name'))))[1]"


def first_value(tensor: str) -> str:
    """The text of the first value of ``tensor``."""
    return scalar_text(f"json_extract({values(tensor)}, '$[0]')")


def score_value(tensor: str) -> str:
    """The score a tensor holds: its value, or its largest value (the winning class's probability)."""
    return (f"list_max(list_transform(CAST(json_extract({values(tensor)}, '$[*]') AS JSON[]), "
            f"lambda x: TRY_CAST(json_extract_string(x, '$') AS DOUBLE)))")


def features(body: str) -> str:
    """The input tensors of a request ``body`` as one JSON object of features.

    A one-value tensor (``"amount": [42.0]``) becomes the feature ``amount``;
    a wider one (``"x"`` of shape ``[1, 3]``) becomes ``x_1``, ``x_2``, ``x_3``.
    """
    ins = tensors(body, "inputs")
    named = f"list_filter({ins}, lambda t: json_extract_string(t, '$.name') IS NOT NULL)"
    row = values("t")
    name = "json_extract_string(t, '$.name')"
    entries = (f"flatten(list_transform({named}, lambda t: CASE WHEN json_array_length({row}) = 1 "
               f"THEN [{{'k': {name}, 'v': json_extract({row}, '$[0]')}}] "
               f"ELSE list_transform(CAST(json_extract({row}, '$[*]') AS JSON[]), "
               f"lambda x, i: {{'k': {name} || '_' || i, 'v': x}}) END))")
    # try(): two inputs of one name cannot make an object; the request then has no features
    return f"CASE WHEN len({named}) > 0 THEN try(to_json(map_from_entries({entries}))) END"
