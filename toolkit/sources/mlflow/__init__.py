"""MLflow's model registry as vdrift's artifact registry, and its aliases as deployment events.

:func:`ingest_mlflow` reads a registry through the real MLflow client
(``mlflow.MlflowClient``), writes what it read as ordinary contract files
(one artifacts CSV per model version, one deployments JSON line per alias
change) into an extract folder and loads them with :meth:`Store.ingest
<toolkit.store.Store.ingest>`: the same validation, quarantine, transactions,
checksum-based skips and ``ingest_log`` rows as any other file, no second
validator. docs/sources-mlflow.md has the worked example and the limits.

* **Digests.** Each version's source (``get_model_version_download_uri``: a
  local folder or file, ``runs:/``, ``models:/m-...``, ``mlflow-artifacts:/``,
  a cloud URI) is digested with :func:`toolkit.instrument.artifact_digest`,
  the digest serving code logs. A local source is digested in place; any other
  is downloaded into a temporary folder first. A version whose source cannot
  be resolved, downloaded or is empty is written with an empty digest, so the
  ingest quarantines it ("missing required value: artifact_hash ...") with the
  problem, model, version and source in the raw row; the report lists it too.
* **Events.** MLflow keeps no alias history: the registry holds only where
  each alias points now (the SQL store does not even update a timestamp when
  an alias moves). vdrift keeps the history itself: every call compares the
  aliases it reads with the last alias event it stored for that model, alias,
  component and scope, and writes one event per difference, stamped with the
  time of the read (``observed_at``). An alias that moved to a higher version
  number is a ``deploy``, to a lower one a ``rollback``, a removed alias a
  ``config_change`` without a version. The event's note says between which
  times the move happened. Several moves between two reads are seen as one.
"""

from .client import display_uri
from .ingest import ingest_mlflow
from .records import ACTOR, DEFAULT_ALIASES, DEFAULT_LABEL, NOTE_HEAD, AliasChange, MlflowIngest, RegistryVersion

__all__ = [
    "ACTOR", "DEFAULT_ALIASES", "DEFAULT_LABEL", "NOTE_HEAD", "AliasChange", "MlflowIngest", "RegistryVersion",
    "display_uri", "ingest_mlflow",
]
