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


_KNOWN_KEYS = {"columns", "timestamps", "defaults", "covariates", "format"}


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
    layout = data.get("format")
    if layout is not None and not (isinstance(layout, str) and layout):
        raise InputError(f'mapping {source}: format must name a log layout, e.g. format = "sagemaker"')
    return Mapping(
        columns=dict(columns),
        timezone=timezone,
        time_format=fmt,
        defaults=dict(defaults),
        covariates=cov,
        format=layout,
        source=source,
    )
