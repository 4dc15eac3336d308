"""Serving-platform adapters: native prediction logs read into the data contract.

Each adapter reads one platform's own log layout, as the platform writes it,
and yields a SQL relation with contract-named columns (``request_id``, ``ts``,
``model_version``, ``prediction``, ``score``, ...), the input features as
covariate columns, and per record a reason when it cannot be read. Ingest
(:mod:`toolkit.store.ingest`) then types, checks, deduplicates and
quarantines those rows exactly as it does a flat file, so ``rows read =
accepted + quarantined`` holds per file. A mapping's ``[columns]``,
``[defaults]`` and ``[timestamps]`` apply on top of the adapter's columns.

Adapters (``vdrift ingest predictions --format NAME``, or ``format = "NAME"``
in a mapping file): see :data:`ADAPTERS` and docs/sources.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import duckdb

from ..errors import InputError
from ..store.mapping import Mapping
from .bentoml import BentoML
from .common import INTERNAL, Source
from .kserve import KServe
from .sagemaker import SageMaker
from .seldon import Seldon


class Adapter(Protocol):
    """What an adapter provides (each is a frozen dataclass)."""

    # read-only members: the adapters are frozen dataclasses
    @property
    def name(self) -> str:
        """The ``--format`` name."""

    @property
    def endings(self) -> tuple[str, ...]:
        """File-name endings of this layout's log files."""

    @property
    def rows_what(self) -> str:
        """What one row of the file is, for the ingest report."""

    def accepts(self, path: Path) -> bool:
        """True for a file of this layout when it is found while walking a directory."""

    def build(self, con: duckdb.DuckDBPyConnection, path: Path, read_path: str, mapping: Mapping) -> Source:
        """The relation that reads ``path`` as contract rows."""


#: the adapters by name
ADAPTERS: dict[str, Adapter] = {a.name: a for a in (SageMaker(), KServe(), Seldon(), BentoML())}


def adapter_for(name: str) -> Adapter:
    """The adapter called ``name``; an :class:`InputError` listing the known ones otherwise."""
    try:
        return ADAPTERS[name]
    except (KeyError, TypeError):
        raise InputError(
            f"unknown log format {name!r}; known formats: {', '.join(ADAPTERS)} "
            "(or leave it out for files in vdrift's own flat layout)"
        ) from None


__all__ = ["ADAPTERS", "INTERNAL", "Adapter", "Source", "adapter_for"]
