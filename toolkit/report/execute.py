"""Run a report notebook with papermill, in the kernel of this environment.

Two pitfalls are handled here (docs/design.md, "Offline reports"): the execution timeout is
always set, and the kernel is the ``python3`` of *this* environment (a
kernelspec found first on ``JUPYTER_PATH`` or in the user's data folder may
point to another Python, so it is checked and, if needed, a ``vdrift``
kernelspec pointing to :data:`sys.executable` is installed into
``sys.prefix``).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError, NotApplicable, StoreError, VdriftError

#: Name of the kernelspec installed when ``python3`` is not this environment's.
KERNEL_NAME = "vdrift"
_PY_ALIASES = {"python", f"python{sys.version_info[0]}", f"python{sys.version_info[0]}.{sys.version_info[1]}"}


class ReportExecutionError(VdriftError):
    """A notebook cell failed; the executed notebook is kept for debugging."""

    exit_code = 1


@dataclass(frozen=True)
class CellFailure:
    """Where and why a notebook failed."""

    cell_index: int
    first_line: str
    tags: tuple[str, ...]
    ename: str
    evalue: str
    notebook: Path

    def message(self) -> str:
        """The error message: the failing cell, the exception and where the notebook is kept."""
        where = f"cell {self.cell_index} of the template"
        if self.tags:
            where += f" [tags: {', '.join(self.tags)}]"
        where += f" (first line: {self.first_line!r})"
        return (
            f"the report notebook failed in {where}: {self.ename}: {self.evalue}\n"
            f"The executed notebook is kept for debugging: {self.notebook}"
        )


def _points_here(argv0: str) -> bool:
    """True when a kernelspec's interpreter is this one, in this environment.

    Two virtualenvs made from one Python both link to the same binary, so the
    resolved files alone would match a kernel of *another* environment (and
    another toolkit): the folders holding the two ``python`` links must match too.
    """
    if argv0 in _PY_ALIASES:
        return True  # jupyter_client replaces these with sys.executable
    try:
        theirs, ours = Path(argv0), Path(sys.executable)
        return theirs.parent.resolve() == ours.parent.resolve() and theirs.resolve() == ours.resolve()
    except OSError:
        return False


def ensure_kernel() -> str:
    """Name of a kernelspec that runs :data:`sys.executable`, installing one if needed.

    Returns
    -------
    str
        ``"python3"`` when that kernelspec already runs this interpreter,
        else ``"vdrift"`` (installed under ``sys.prefix`` on first use).
    """
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    ksm = KernelSpecManager()
    for name in ("python3", KERNEL_NAME):
        try:
            spec = ksm.get_kernel_spec(name)
        except NoSuchKernel:
            continue
        if spec.argv and _points_here(spec.argv[0]) and spec.language == "python":
            return name
    from ipykernel.kernelspec import install

    install(kernel_name=KERNEL_NAME, display_name=f"Python 3 (vdrift, {sys.prefix})", prefix=sys.prefix)
    return KERNEL_NAME


def run_notebook(
    template: Path,
    output: Path,
    parameters: dict[str, Any],
    *,
    timeout: float = 600,
    cwd: Path | None = None,
) -> Path:
    """Execute ``template`` into ``output`` with papermill.

    Parameters
    ----------
    template
        The notebook with a cell tagged ``parameters``.
    output
        Where the executed notebook is written (also on failure).
    parameters
        Values injected after the ``parameters`` cell.
    timeout
        Seconds one cell may run before it is interrupted.
    cwd
        Working folder of the kernel.

    Raises
    ------
    ReportExecutionError, InputError, StoreError, NotApplicable
        When a cell fails: the message names the cell (index, tags, first
        line) and the path of the kept notebook. A toolkit error raised in the
        notebook keeps its class (and so its CLI exit code).
    """
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    if timeout is None or not (float(timeout) > 0):
        raise InputError(f"timeout must be a positive number of seconds, got {timeout!r}")
    kernel = ensure_kernel()
    output.parent.mkdir(parents=True, exist_ok=True)
    env_backup = os.environ.get("PYDEVD_DISABLE_FILE_VALIDATION")
    os.environ["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"  # quiets a debugger warning on stderr
    try:
        pm.execute_notebook(
            str(template),
            str(output),
            parameters=parameters,
            kernel_name=kernel,
            execution_timeout=float(timeout),
            progress_bar=False,
            log_output=False,
            cwd=str(cwd) if cwd else None,
            # The kernel's own start-up warnings (e.g. about TCP transport on
            # localhost) are noise on a report run; cell errors are still reported.
            extra_arguments=["--IPKernelApp.log_level=ERROR"],
        )
    except PapermillExecutionError as exc:
        failure = describe_failure(output, exc)
        raise _error_class(exc.ename)(failure.message()) from None
    finally:
        if env_backup is None:
            os.environ.pop("PYDEVD_DISABLE_FILE_VALIDATION", None)
        else:
            os.environ["PYDEVD_DISABLE_FILE_VALIDATION"] = env_backup
    return output


def _error_class(ename: str) -> type[VdriftError]:
    return {
        "InputError": InputError,
        "StoreError": StoreError,
        "NotApplicable": NotApplicable,
    }.get(ename, ReportExecutionError)


_EXTRA_TAGS = ("injected-parameters", "papermill-error-cell-tag")


def describe_failure(notebook: Path, exc: Any) -> CellFailure:
    """Locate the failing cell of an executed notebook.

    The index is the cell's position in the *template* (papermill's injected
    parameters cell and its error banner are not counted), so it points to
    the cell to fix in ``notebooks/``.
    """
    import nbformat

    index, tags, source = int(exc.cell_index), (), exc.source or ""
    try:
        nb = nbformat.read(str(notebook), as_version=4)
        template_cells = [c for c in nb.cells if not set(c.get("metadata", {}).get("tags", [])) & set(_EXTRA_TAGS)]
        for i, cell in enumerate(template_cells):
            failed = any(o.get("output_type") == "error" for o in cell.get("outputs", []))
            if cell.get("cell_type") == "code" and failed:
                index, tags, source = i, tuple(cell.get("metadata", {}).get("tags", [])), cell.get("source", "")
                break
    except (OSError, ValueError):
        pass
    lines = [ln for ln in str(source).splitlines() if ln.strip()]
    first = lines[0].strip() if lines else ""
    evalue = str(exc.evalue).strip()
    return CellFailure(
        cell_index=index,
        first_line=first[:120],
        tags=tags,
        ename=str(exc.ename),
        evalue=evalue.splitlines()[0][:500] if evalue else "",
        notebook=notebook,
    )
