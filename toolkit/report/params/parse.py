"""Raw parameter values: CLI ``NAME=VALUE`` pairs, a YAML file, and :func:`coerce` to a spec's type."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from ...errors import InputError
from .specs import ParamSpec


def parse_cli_params(pairs: list[str] | None) -> dict[str, str]:
    """``["NAME=VALUE", ...]`` -> dict of raw strings (typed later by :func:`coerce`)."""
    out: dict[str, str] = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise InputError(f"--param {pair!r}: write it as NAME=VALUE, e.g. --param metric=approval_rate")
        name, value = pair.split("=", 1)
        name = name.strip()
        if not name:
            raise InputError(f"--param {pair!r}: the name before '=' is empty")
        out[name] = value
    return out


def load_params_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML (or JSON) mapping of parameters."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"parameters file {str(p)!r} does not exist")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise InputError(f"parameters file {str(p)!r} is not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError(f"parameters file {str(p)!r} must hold a mapping NAME: VALUE, not {type(data).__name__}")
    return {str(k): v for k, v in data.items()}


def _as_text(value: Any) -> str:
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    return str(value)


def coerce(spec: ParamSpec, value: Any) -> Any:
    """Turn a raw value (CLI string or YAML value) into the spec's type."""
    return _COERCERS[spec.type](spec.name, value)


def _to_str(name: str, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, dict)):
        raise InputError(f"parameter {name} must be a single value, not {type(value).__name__}")
    return _as_text(value)


def _to_int(name: str, value: Any) -> int:
    if isinstance(value, bool):
        raise InputError(f"parameter {name} must be an integer, got {value!r}")
    try:
        return int(str(value).strip())
    except ValueError:
        raise InputError(f"parameter {name} must be an integer, got {value!r}") from None


def _to_bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"true", "yes", "1"}:
        return True
    if text in {"false", "no", "0"}:
        return False
    raise InputError(f"parameter {name} must be true or false, got {value!r}")


def _to_list(name: str, value: Any) -> list[str]:
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return []
        if not text.startswith("["):
            return [part.strip() for part in text.split(",") if part.strip()]
        value = _yaml_value(name, text)
    if value is None:
        return []
    if not isinstance(value, (list, tuple)):
        raise InputError(f"parameter {name} must be a list, e.g. {name}=a,b or {name}='[a, b]'")
    return [_as_text(v) for v in value]


def _to_dict(name: str, value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        text = value.strip()
        value = _yaml_value(name, text) if text else {}
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InputError(f"parameter {name} must be a mapping, e.g. {name}='{{region: eu}}'")
    out: dict[str, Any] = {}
    for k, v in value.items():
        if isinstance(v, (list, tuple, dict)) or v is None:
            raise InputError(f"parameter {name}: the value of {k!r} must be one value, e.g. {name}='{{region: eu}}'")
        out[str(k)] = _as_text(v)
    return out


_COERCERS: dict[str, Callable[[str, Any], Any]] = {
    "str": _to_str, "int": _to_int, "bool": _to_bool, "list": _to_list, "dict": _to_dict,
}


def _yaml_value(name: str, text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InputError(f"parameter {name}: cannot read {text!r} ({exc.__class__.__name__})") from None
