"""The files of a batch and the output paths made for each: patterns are expanded (``**``
spans folders), and ``{stem}``, ``{name}``, ``{parent}`` and ``{relpath}`` in an output
path are replaced by what belongs to the input file."""

from __future__ import annotations

import glob
import os
import re
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..errors import AerflowError

__all__ = ["PLACEHOLDERS", "Input", "expand", "remove_stale_temporaries", "substitute"]

PLACEHOLDERS = ("stem", "name", "parent", "relpath")
"""The names an output path may use between braces."""


@dataclass(frozen=True)
class Input:
    """One file of a batch: ``path`` as matched, absolute ``location``, the ``root`` its
    pattern starts from (a literal path's folder) and its size in bytes."""

    path: str
    location: str
    root: str
    size: int

    def fields(self) -> dict[str, str]:
        """The placeholder values: ``name`` ``rec.raw``, ``stem`` ``rec``, ``parent`` the
        absolute folder, ``relpath`` the path below the pattern's root without the last
        extension (``a/b/rec``)."""
        name = os.path.basename(self.location)
        stem = os.path.splitext(name)[0] or name
        relative = os.path.relpath(self.location, self.root)
        head = os.path.dirname(relative)
        return {
            "name": name,
            "stem": stem,
            "parent": os.path.dirname(self.location),
            "relpath": os.path.join(head, stem) if head else stem,
        }


def _root(pattern: str) -> str:
    """The folder a pattern starts from: its leading components without glob magic."""
    parts = pattern.split(os.sep)
    fixed: list[str] = []
    for part in parts[:-1]:
        if glob.has_magic(part):
            break
        fixed.append(part)
    root = os.sep.join(fixed) if fixed else "."
    return os.path.abspath(root or os.sep)


def expand(patterns: Iterable[str | os.PathLike[str]]) -> list[Input]:
    """Every file the patterns name, in pattern order (the matches of one pattern sorted),
    each once. A pattern matching nothing, a missing file or a folder is an error."""
    found: list[Input] = []
    seen: set[str] = set()
    for item in patterns:
        pattern = os.fspath(item)
        if glob.has_magic(pattern):
            root = _root(pattern)
            matches = sorted(p for p in glob.glob(pattern, recursive=True) if os.path.isfile(p))
            if not matches:
                raise AerflowError(f"no file matches {pattern}")
        else:
            if os.path.isdir(pattern):
                raise AerflowError(
                    f"{pattern} is a folder: give a pattern such as "
                    f"'{os.path.join(pattern, '**', '*.raw')}'"
                )
            if not os.path.isfile(pattern):
                raise AerflowError(f"{pattern}: no such file")
            root = os.path.dirname(os.path.abspath(pattern))
            matches = [pattern]
        for path in matches:
            location = os.path.abspath(path)
            key = os.path.realpath(location)
            if key in seen:
                continue
            seen.add(key)
            found.append(Input(path, location, root, os.path.getsize(location)))
    return found


_FIELD = re.compile(r"\{([^{}]*)\}")


def check_template(template: str) -> None:
    """Refuse placeholders other than :data:`PLACEHOLDERS` before anything runs."""
    for match in _FIELD.finditer(template.replace("{{", "").replace("}}", "")):
        if match.group(1) not in PLACEHOLDERS:
            known = ", ".join("{" + n + "}" for n in PLACEHOLDERS)
            raise AerflowError(f"unknown placeholder {{{match.group(1)}}} in {template} ({known})")


def substitute(template: str, item: Input, out: str | None) -> str:
    """``template`` for ``item``, as an absolute path: a relative result goes under
    ``out`` (or the current folder)."""
    check_template(template)
    path = template.format_map(item.fields())
    return os.path.abspath(os.path.join(out, path) if out is not None else path)


def uses_placeholders(templates: Sequence[str]) -> bool:
    return any(_FIELD.search(t.replace("{{", "").replace("}}", "")) for t in templates)


def remove_stale_temporaries(paths: Iterable[str]) -> int:
    """Remove the temporary files and folders that a writer killed before its rename left
    beside ``paths`` (``.NAME.XXXXXXXX.part`` and ``.NAME.XXXXXXXX.part.EXT``, the names
    aerflow's outputs use). Call only when nothing writes these paths any more. Returns how
    many were removed."""
    removed = 0
    by_folder: dict[str, set[str]] = {}
    for path in paths:
        by_folder.setdefault(os.path.dirname(path), set()).add(os.path.basename(path))
    for folder, names in by_folder.items():
        try:
            entries = os.listdir(folder)
        except OSError:
            continue
        alternatives = "|".join(re.escape(n) for n in sorted(names))
        stale = re.compile(r"\.(?:" + alternatives + r")\.[a-z0-9_]{8}\.part(?:\.[^.]+)?")
        for entry in entries:
            if not stale.fullmatch(entry):
                continue
            target = os.path.join(folder, entry)
            try:
                if os.path.isdir(target) and not os.path.islink(target):
                    shutil.rmtree(target)
                else:
                    os.unlink(target)
            except OSError:
                continue
            removed += 1
    return removed
