"""Mapping files: a team's own column names and time formats onto the contract.

A mapping is TOML or YAML::

    covariates = ["amount", "merchant_category"]   # extra columns to keep (default: all)
    format = "sagemaker"  # optional: a serving platform's native log layout (toolkit.sources)

    [columns]            # contract name = your column name
    model_version = "version"
    ts = "timestamp"

    [timestamps]         # how time columns are read (all optional)
    timezone = "Europe/Berlin"   # zone of naive time strings (default UTC)
    format = "%d/%m/%Y %H:%M:%S" # strptime format; or epoch_s / epoch_ms / epoch_us

    [defaults]           # constant values for contract columns the file lacks
    component = "batch"

    [values.event]       # your names for a contract column's values (exact text, after trimming)
    canary = "rollout_start"
    promote = "rollout_complete"
    revert = "rollback"

    [values.cache_hit]
    HIT = true
    MISS = false

A covariate column is numeric when every value reads as a number;
``categorical = ["zip_code"]`` keeps the listed columns as text (categories)
even then. Columns that look like a label (``label``, ``target``, ...) or an
identifier (named ``*_id`` / ``uuid``, or text unique on every row) are not
stored as covariates unless ``covariates`` lists them.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError

EPOCH_UNITS = {"epoch_s": 1.0, "epoch_ms": 1e3, "epoch_us": 1e6, "epoch_ns": 1e9}


@dataclass(frozen=True)
class Mapping:
    """How one team's files map onto the data contract.

    Attributes
    ----------
    columns
        Contract name -> source column name.
    timezone
        IANA zone for time strings without an offset.
    time_format
        strptime format for time strings, an ``epoch_*`` unit, or None (ISO 8601).
    defaults
        Contract name -> constant value for columns absent from the file.
    covariates
        Extra columns to keep as covariates; None keeps every extra column.
    values
        Contract name -> {your value: contract value}: value names mapped before
        the row is typed and checked (event names, component names, version labels,
        booleans such as Y/N). Values not listed pass unchanged.
    categorical
        Covariate columns kept as text (categories) even when every value is a number.
    format
        A serving platform's native log layout the file is read as (an adapter of
        :mod:`toolkit.sources`: ``sagemaker``, ``kserve``, ``seldon``, ``bentoml``), or None
        for files in the contract's own flat layout.
    source
        Where the mapping came from (file path or ``"inline"``), for messages.
    """

    columns: dict[str, str] = field(default_factory=dict)
    timezone: str = "UTC"
    time_format: str | None = None
    defaults: dict[str, object] = field(default_factory=dict)
    covariates: tuple[str, ...] | None = None
    values: dict[str, dict[str, str]] = field(default_factory=dict)
    categorical: tuple[str, ...] = ()
    format: str | None = None
    source: str = "default"

    def source_for(self, contract_name: str) -> str:
        """The source column that feeds ``contract_name``."""
        return self.columns.get(contract_name, contract_name)

    def describe(self) -> str:
        """Compact text stored in ingest_log for provenance."""
        parts = [f"{k}<-{v}" for k, v in sorted(self.columns.items())]
        if self.timezone != "UTC":
            parts.append(f"tz={self.timezone}")
        if self.time_format:
            parts.append(f"format={self.time_format}")
        if self.covariates is not None:
            parts.append("covariates=" + ",".join(self.covariates))
        for cname, vmap in sorted(self.values.items()):
            parts.append(f"values.{cname}=" + ",".join(f"{k}>{v}" for k, v in vmap.items()))
        if self.categorical:
            parts.append("categorical=" + ",".join(self.categorical))
        if self.format:
            parts.append(f"layout={self.format}")
        return f"{self.source}: " + ("; ".join(parts) if parts else "identity")


def load_mapping(spec: str | os.PathLike | dict | Mapping | None) -> Mapping:
    """Read a mapping from a TOML/YAML file, a dict, or return the identity."""
    if spec is None:
        return Mapping()
    if isinstance(spec, Mapping):
        return spec
    if isinstance(spec, dict):
        return _from_dict(spec, "inline")
    path = Path(spec)
    if not path.is_file():
        raise InputError(f"mapping file {str(path)!r} not found")
    text = path.read_bytes()
    try:
        if path.suffix.lower() == ".toml":
            data = tomllib.loads(text.decode("utf-8"))
        elif path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text.decode("utf-8")) or {}
        else:
            raise InputError(f"mapping file {str(path)!r}: use a .toml, .yaml or .yml file")
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"mapping file {str(path)!r} is not valid TOML: {exc}") from None
    except InputError:
        raise
    except Exception as exc:  # yaml.YAMLError and friends
        raise InputError(f"mapping file {str(path)!r} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise InputError(f"mapping file {str(path)!r} must hold a table/mapping at the top level")
    return _from_dict(data, str(path))


_KNOWN_KEYS = {"columns", "timestamps", "defaults", "covariates", "values", "categorical", "format"}


def _from_dict(data: dict, source: str) -> Mapping:
    unknown = set(data) - _KNOWN_KEYS
    if unknown:
        raise InputError(
            f"mapping {source}: unknown key(s) {sorted(unknown)}; allowed: {sorted(_KNOWN_KEYS)}"
        )
    columns = data.get("columns") or {}
    if not isinstance(columns, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and v for k, v in columns.items()
    ):
        raise InputError(
            f"mapping {source}: [columns] must map contract names to your column names, "
            'e.g. model_version = "version"'
        )
    ts = data.get("timestamps") or {}
    if not isinstance(ts, dict):
        raise InputError(f"mapping {source}: [timestamps] must be a table with timezone/format")
    timezone = str(ts.get("timezone", "UTC"))
    fmt = ts.get("format")
    if fmt is not None and not isinstance(fmt, str):
        raise InputError(f"mapping {source}: timestamps.format must be a strptime string or epoch_s/epoch_ms/epoch_us")
    defaults = data.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise InputError(f"mapping {source}: [defaults] must map contract names to constant values")
    cov = data.get("covariates")
    if cov is not None:
        if not isinstance(cov, list) or not all(isinstance(c, str) and c for c in cov):
            raise InputError(f'mapping {source}: covariates must be a list of column names, e.g. ["amount"]')
        cov = tuple(cov)
    values = _values(data.get("values"), source)
    categorical = data.get("categorical") or []
    if not isinstance(categorical, list) or not all(isinstance(c, str) and c for c in categorical):
        raise InputError(f'mapping {source}: categorical must be a list of column names, e.g. ["zip_code"]')
    layout = data.get("format")
    if layout is not None and not (isinstance(layout, str) and layout):
        raise InputError(f'mapping {source}: format must name a log layout, e.g. format = "sagemaker"')
    return Mapping(
        columns=dict(columns),
        timezone=timezone,
        time_format=fmt,
        defaults=dict(defaults),
        covariates=cov,
        values=values,
        categorical=tuple(categorical),
        format=layout,
        source=source,
    )


def _values(data: object, source: str) -> dict[str, dict[str, str]]:
    """The ``[values.<column>]`` tables: each maps a team's value names onto the contract's values."""
    if data is None:
        return {}
    example = '[values.event]\n    canary = "rollout_start"'
    if not isinstance(data, dict):
        raise InputError(f"mapping {source}: [values] must hold one table per column, e.g.\n    {example}")
    out: dict[str, dict[str, str]] = {}
    for cname, table in data.items():
        if not isinstance(table, dict) or not table:
            raise InputError(
                f"mapping {source}: values.{cname} must be a table of your value = contract value, e.g.\n    {example}"
            )
        vmap: dict[str, str] = {}
        for key, value in table.items():
            if isinstance(value, bool):
                value = "true" if value else "false"
            elif isinstance(value, (int, float)):
                value = str(value)
            if not isinstance(value, str) or not value.strip():
                raise InputError(
                    f"mapping {source}: values.{cname}.{key} = {value!r}: give the contract value as "
                    "non-empty text, a number or a boolean"
                )
            vmap[str(key).strip()] = value.strip()
        out[str(cname)] = vmap
    return out
