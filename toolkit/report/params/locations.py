"""Output locations: names and folders confined to the reports folder."""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath, PureWindowsPath

from ...errors import InputError

_SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


def check_relative_name(value: str, *, what: str) -> str:
    """Reject absolute paths, ``..`` and separators-with-escape in a name."""
    text = str(value)
    if not text or "\x00" in text:
        raise InputError(f"{what} is empty")
    if (
        PurePosixPath(text).is_absolute()
        or PureWindowsPath(text).is_absolute()
        or PureWindowsPath(text).drive
        or text.startswith(("~", "/", "\\"))
    ):
        raise InputError(f"{what} {text!r} is an absolute path: give a name inside the reports folder")
    parts = re.split(r"[\\/]+", text)
    if any(part == ".." for part in parts):
        raise InputError(f"{what} {text!r} contains '..': reports stay inside the reports folder")
    return text


def check_slug(slug: str) -> str:
    """A folder-name slug: lower-case letters, digits, '-' and '_'."""
    check_relative_name(slug, what="slug")
    if not _SLUG.match(slug):
        raise InputError(
            f"slug {slug!r} is not allowed: use 1-63 lower-case letters, digits, '-' or '_' "
            "(it names the folder reports/<date>-<slug>)"
        )
    return slug


def confined(out_dir: Path, name: str, *, what: str) -> Path:
    """``out_dir / name`` after checking that it stays inside ``out_dir``."""
    check_relative_name(name, what=what)
    base = out_dir.resolve()
    target = (base / name).resolve()
    if target == base or base not in target.parents:
        raise InputError(f"{what} {name!r} would leave the reports folder {str(out_dir)!r}")
    return target
