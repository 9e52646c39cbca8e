"""The shape of the package: imports point one way, private names stay in their package,
modules stay short, errors live in ``errors.py``, and the command line starts light.

The import graph is read from the source with :mod:`ast` (nothing is imported): every
``import`` and ``from ... import`` of an ``aerflow`` module counts, at module level or inside a
function, except those under ``if TYPE_CHECKING:`` (never run). An edge goes from the importing
module to the module imported: ``from aerflow.formats import evt3`` names the module
``aerflow.formats.evt3``; ``from aerflow.stream import Stream`` the module ``aerflow.stream``.
The parent packages that Python imports first are not edges (they are loaded before any
module inside them runs).

The allow-lists below hold what is wrong today and being fixed; each entry says why. An entry
that is no longer needed fails its own test, so the lists only shrink.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SOURCE / "aerflow"
MAX_LINES = 600

# -- allow-lists: today's known violations -----------------------------------------------------

KNOWN_CYCLE_EDGES: dict[tuple[str, str], str] = {
    # (importer, imported): one edge of a cycle that another change removes. None today.
}
"""Edges that close an import cycle; the graph without them must have none."""

KNOWN_PRIVATE_IMPORTS: dict[tuple[str, str], str] = {
    # (importer, "module" or "module:name"): a private name imported from outside its package.
    # None today.
}

LONG_MODULES: dict[str, str] = {
    # path under src/aerflow -> why it is over 600 lines for now
}

EXCEPTIONS_OUTSIDE_ERRORS: dict[str, str] = {
    # "path:Class" -> why it is not in errors.py
    # Signals between two parts of one package, caught there and never seen by a user:
    "devices/config_files.py:_Invalid": "private: turned into ConfigurationError in the module",
    "devices/ring.py:RingEnded": "the ring tells the camera its stream ended; caught there",
    "emulators/base.py:EmulatedStall": "an emulated device's USB stall; its handle reports "
    "it as a DeviceError",
    "formats/_aedat4_decode.py:_CountMismatch": "private: the reader catches it and decodes "
    "again without the file table's counts",
}

# -- reading the source ------------------------------------------------------------------------


def _module_name(path: Path, source: Path) -> str:
    parts = list(path.relative_to(source).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules(source: Path = SOURCE) -> dict[str, Path]:
    package = source / "aerflow"
    return {_module_name(path, source): path for path in sorted(package.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_statements(tree: ast.AST, type_checking: bool) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement: module level, in functions and classes, and (when
    ``type_checking``) in the body of an ``if TYPE_CHECKING:``, which never runs."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        if isinstance(node, ast.If) and _is_type_checking(node.test) and not type_checking:
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


@dataclass(frozen=True)
class Imported:
    importer: str
    module: str
    """The aerflow module the statement loads."""
    name: str | None
    """The name taken from it (``from module import name``), when that is not a module."""
    line: int


def _resolve(importer: str, path: Path, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    package = importer if path.name == "__init__.py" else importer.rpartition(".")[0]
    for _ in range(node.level - 1):
        package = package.rpartition(".")[0]
    return f"{package}.{node.module}" if node.module else package


def _imports(modules: dict[str, Path], type_checking: bool = False) -> list[Imported]:
    found: list[Imported] = []
    for importer, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in _import_statements(tree, type_checking):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] == "aerflow":
                        found.append(Imported(importer, alias.name, None, node.lineno))
                continue
            base = _resolve(importer, path, node)
            if base.split(".")[0] != "aerflow":
                continue
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                if submodule in modules:
                    found.append(Imported(importer, submodule, None, node.lineno))
                else:
                    found.append(Imported(importer, base, alias.name, node.lineno))
    return found


def _graph(source: Path = SOURCE) -> dict[str, set[str]]:
    modules = _modules(source)
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for imported in _imports(modules):
        if imported.module in modules and imported.module != imported.importer:
            graph[imported.importer].add(imported.module)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10 * len(graph) + 100))
    try:
        for node in sorted(graph):
            if node not in index:
                visit(node)
    finally:
        sys.setrecursionlimit(limit)
    return sorted(components)


def _private_part(module: str) -> str | None:
    """The package a private module belongs to (``aerflow.formats`` for
    ``aerflow.formats._base``), or None when no part of the name is private."""
    parts = module.split(".")
    for position, part in enumerate(parts):
        if part.startswith("_") and not part.startswith("__"):
            return ".".join(parts[:position])
    return None


def _inside(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _private_imports(modules: dict[str, Path]) -> dict[tuple[str, str], int]:
    """(importer, what) -> line, for each private module or name imported from outside the
    package that holds it (imports for type checking count too)."""
    found: dict[tuple[str, str], int] = {}
    for imported in _imports(modules, type_checking=True):
        owner = _private_part(imported.module)
        if owner is not None and not _inside(imported.importer, owner):
            found.setdefault((imported.importer, imported.module), imported.line)
            continue
        name = imported.name
        if name is None or not name.startswith("_") or name.startswith("__"):
            continue
        is_package = modules.get(imported.module, Path()).name == "__init__.py"
        owner = imported.module if is_package else imported.module.rpartition(".")[0]
        if not _inside(imported.importer, owner):
            found.setdefault((imported.importer, f"{imported.module}:{name}"), imported.line)
    return found


# -- the import graph --------------------------------------------------------------------------


def test_the_graph_reader_sees_imports_of_every_kind() -> None:
    """The reader itself, on modules whose imports are known by construction."""
    graph = _graph()
    # module level, relative: api.py imports `.registry`; function level: cli/main.py imports
    # `..render.commands` inside a function; `from .. import registry` names the module.
    assert "aerflow.registry" in graph["aerflow.api"]
    assert "aerflow.render.commands" in graph["aerflow.cli.main"]
    assert "aerflow.registry" in graph["aerflow.cli.main"]
    # `if TYPE_CHECKING:` imports are not edges (cli/main.py names Stream only for types).
    assert "aerflow.stream" not in graph["aerflow.cli.main"]
    # A cycle on a graph given by hand is found, and a chain is not one.
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []
    # Private parts: the package that owns them.
    assert _private_part("aerflow.formats._base") == "aerflow.formats"
    assert _private_part("aerflow._optional") == "aerflow"
    assert _private_part("aerflow.formats.evt3") is None


def test_the_checks_catch_a_made_up_package(tmp_path: Path) -> None:
    """A small tree with one cycle (through a function-level import) and two private
    imports from outside their package, beside allowed ones."""
    files = {
        "aerflow/__init__.py": "from . import formats\n",
        "aerflow/_optional.py": "",
        "aerflow/formats/__init__.py": "",
        "aerflow/formats/_base.py": "from .evt3 import Reader\n",
        "aerflow/formats/evt3.py": (
            "from .._optional import require\nfrom ._base import Base\ndef _kernel(): ...\n"
        ),
        "aerflow/devices/__init__.py": (
            "from typing import TYPE_CHECKING\n"
            "from ..formats import evt3\n"
            "if TYPE_CHECKING:\n"
            "    from ..formats._base import Base\n"
            "def f():\n"
            "    from aerflow.formats.evt3 import _kernel\n"
        ),
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    graph = _graph(tmp_path)
    assert _cycles(graph) == [["aerflow.formats._base", "aerflow.formats.evt3"]]
    assert graph["aerflow.devices"] == {"aerflow.formats.evt3"}  # TYPE_CHECKING: no edge
    assert set(_private_imports(_modules(tmp_path))) == {
        ("aerflow.devices", "aerflow.formats._base"),
        ("aerflow.devices", "aerflow.formats.evt3:_kernel"),
    }


def test_no_import_cycles() -> None:
    graph = _graph()
    for (importer, imported), _why in KNOWN_CYCLE_EDGES.items():
        graph.get(importer, set()).discard(imported)
    cycles = _cycles(graph)
    assert not cycles, "import cycles (an edge in each must go):\n" + "\n".join(
        " <-> ".join(cycle) for cycle in cycles
    )


def test_known_cycle_edges_still_exist() -> None:
    """An allowed edge that is gone must leave the list (and so must one no longer in a
    cycle)."""
    graph = _graph()
    stale = [edge for edge in KNOWN_CYCLE_EDGES if edge[1] not in graph.get(edge[0], set())]
    cyclic = {m for cycle in _cycles(graph) for m in cycle}
    stale += [e for e in KNOWN_CYCLE_EDGES if e[0] not in cyclic or e[1] not in cyclic]
    assert not stale, f"remove from KNOWN_CYCLE_EDGES: {sorted(set(stale))}"


LAYERS: tuple[frozenset[str], ...] = (
    frozenset({"aerflow", "__main__", "cli", "batch", "compat", "dask"}),
    frozenset({"components"}),
    frozenset({"filters", "synthetic", "render", "tensors", "net", "devices", "emulators"}),
    frozenset({"api"}),
    frozenset({"formats"}),
    frozenset({"stream", "sinks", "pipeline", "_output"}),
    frozenset({"registry"}),
    frozenset(
        {
            "events",
            "properties",
            "errors",
            "_optional",
            "_checks",
            "_extent",
            "_jit",
            "_room",
            "_stopping",
        }
    ),
)
"""The layers of docs/architecture.md, top first, by module or subpackage under aerflow
(``aerflow`` is the package's ``__init__``); ``_filter_kernels`` belongs to filters."""


def _area(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return "aerflow"
    return "filters" if parts[1] == "_filter_kernels" else parts[1]


def test_imports_point_down_the_layers() -> None:
    rank = {area: level for level, areas in enumerate(LAYERS) for area in areas}
    graph = _graph()
    unplaced = sorted({_area(m) for m in graph} - set(rank))
    assert not unplaced, f"place these in LAYERS (and docs/architecture.md): {unplaced}"
    upward = sorted(
        f"{importer} -> {imported}"
        for importer, targets in graph.items()
        for imported in targets
        if rank[_area(imported)] < rank[_area(importer)]
    )
    assert not upward, "imports up the layers:\n" + "\n".join(upward)


def test_no_private_names_imported_from_outside_their_package() -> None:
    found = _private_imports(_modules())
    new = {key: line for key, line in found.items() if key not in KNOWN_PRIVATE_IMPORTS}
    assert not new, "private names imported from outside their package:\n" + "\n".join(
        f"{importer} (line {line}) imports {what}" for (importer, what), line in sorted(new.items())
    )
    stale = sorted(set(KNOWN_PRIVATE_IMPORTS) - set(found))
    assert not stale, f"remove from KNOWN_PRIVATE_IMPORTS: {stale}"


# -- module size, errors ------------------------------------------------------------------------


def _line_counts() -> dict[str, int]:
    return {
        path.relative_to(PACKAGE).as_posix(): len(path.read_text(encoding="utf-8").splitlines())
        for path in sorted(PACKAGE.rglob("*.py"))
    }


def test_modules_stay_under_600_lines() -> None:
    counts = _line_counts()
    long = {path: n for path, n in counts.items() if n > MAX_LINES and path not in LONG_MODULES}
    assert not long, f"modules over {MAX_LINES} lines (split them): {long}"
    stale = sorted(p for p in LONG_MODULES if counts.get(p, 0) <= MAX_LINES)
    assert not stale, f"remove from LONG_MODULES (now short, or gone): {stale}"


def _exception_classes() -> dict[str, str]:
    """ "path:Class" -> its first base, for each class outside errors.py whose base is an
    exception or warning class (by name: Exception, *Error, *Warning, or a class that is
    itself one)."""
    found: dict[str, str] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        if relative == "errors.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.ClassDef):
                continue
            for base in node.bases:
                name = base.id if isinstance(base, ast.Name) else getattr(base, "attr", "")
                if name in ("Exception", "BaseException") or name.endswith(
                    ("Error", "Warning", "Exception", "Stall")
                ):
                    found[f"{relative}:{node.name}"] = name
                    break
    return found


def test_errors_live_in_errors_py() -> None:
    found = _exception_classes()
    new = sorted(set(found) - set(EXCEPTIONS_OUTSIDE_ERRORS))
    assert not new, f"exception classes outside errors.py (move them there): {new}"
    stale = sorted(set(EXCEPTIONS_OUTSIDE_ERRORS) - set(found))
    assert not stale, f"remove from EXCEPTIONS_OUTSIDE_ERRORS: {stale}"


def test_moved_errors_keep_their_old_homes_and_bases() -> None:
    """Code and users that import an error from where it was defined get the same class."""
    import aerflow
    import aerflow.batch
    from aerflow import errors
    from aerflow.formats import aedat4_description, aedat4_packets, event_stream, text
    from aerflow.formats.hdf5 import Hdf5NotInstalledError
    from aerflow.formats.rosbag import LostMessagesWarning, MissingRosbagsError
    from aerflow.render import MissingDependencyError
    from aerflow.tensors import TorchNotInstalledError

    assert text.TextFormatError is errors.TextFormatError
    assert event_stream.NonMonotonicTimeError is errors.NonMonotonicTimeError
    assert aedat4_packets.PayloadError is errors.PayloadError
    assert aedat4_description.HeaderError is errors.HeaderError
    assert LostMessagesWarning is errors.LostMessagesWarning
    for alias in (Hdf5NotInstalledError, MissingRosbagsError, MissingDependencyError):
        assert alias is errors.MissingDependencyError
    assert TorchNotInstalledError is errors.MissingDependencyError
    assert aerflow.batch.BatchError is errors.BatchError
    assert aerflow.batch.MissingDependencyError is errors.MissingDependencyError
    assert issubclass(errors.MissingDependencyError, ImportError)
    assert issubclass(errors.MissingDependencyError, aerflow.AerflowError)
    assert issubclass(errors.TextFormatError, aerflow.FormatError)


def test_missing_dependency_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from aerflow import _optional
    from aerflow.errors import MissingDependencyError

    monkeypatch.setitem(sys.modules, "aerflow_absent_module", None)
    with pytest.raises(MissingDependencyError) as info:
        _optional.require(
            "aerflow_absent_module", extra="thing", purpose="doing it", hint="or do without"
        )
    assert str(info.value) == (
        "doing it needs aerflow_absent_module: pip install 'aerflow[thing]' (or do without)"
    )
    assert info.value.name == "aerflow_absent_module"
    assert isinstance(info.value, ImportError)
    assert _optional.require("json", extra="x", purpose="y") is sys.modules["json"]


def test_load_reference() -> None:
    from aerflow import _optional, registry

    assert _optional.load_reference("aerflow.registry:FormatInfo") is registry.FormatInfo
    with pytest.raises(ModuleNotFoundError) as info:
        _optional.load_reference("aerflow.no_such_module:Thing")
    assert info.value.name == "aerflow.no_such_module"
    with pytest.raises(ValueError, match="module:Name"):
        _optional.load_reference("aerflow.registry")


def test_properties_has_one_definition() -> None:
    import aerflow
    from aerflow import properties, stream
    from aerflow.formats import _base

    assert properties.Properties.__module__ == "aerflow.properties"
    for home in (aerflow, stream, _base):
        assert home.Properties is properties.Properties


def test_import_aerflow_is_light_and_every_public_name_works() -> None:
    """``import aerflow`` registers the formats but loads the verbs and event types on first
    use; every name of ``__all__`` is then the object its defining module has."""
    code = (
        "import sys, aerflow\n"
        "light = not any(m in sys.modules for m in ('aerflow.api', 'aerflow.events', 'numba'))\n"
        "print(light, len(aerflow.list_formats()) > 10)\n"
        "from aerflow import api, events, formats, properties, registry, errors\n"
        "from aerflow.formats import _base\n"
        "homes = [api, events, _base, properties, registry, errors]\n"
        "for name in aerflow.__all__:\n"
        "    value = getattr(aerflow, name)\n"
        "    assert any(getattr(h, name, None) is value for h in homes), name\n"
        "assert set(aerflow.__all__) <= set(dir(aerflow))\n"
        "print('ok')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300
    )
    assert result.stdout.split() == ["True", "True", "ok"], result.stderr[-2000:]


NUMBA_AT_IMPORT: dict[str, str] = {
    # module -> why importing it imports numba (every other module's kernels are compiled
    # on first call, through aerflow._jit)
    "aerflow.formats._ecf_decode": "the ECF codec's unaligned loads are numba intrinsics, "
    "defined when the module is imported; only HDF5 files (which need h5py) use it",
    "aerflow.formats._ecf": "imports _ecf_decode",
    "aerflow.formats.hdf5_decode": "imports _ecf",
    "aerflow.formats.hdf5_writer": "imports _ecf",
    "aerflow.formats.hdf5": "imports hdf5_decode and hdf5_writer",
}


def test_importing_a_module_loads_no_numba() -> None:
    """Every module of the package, imported in one process (but for those listed), leaves
    numba unloaded: kernels compile on their first call (aerflow._jit)."""
    code = (
        "import importlib, pkgutil, sys, aerflow\n"
        f"skip = {sorted(NUMBA_AT_IMPORT)!r} + ['aerflow.__main__']\n"
        "names = [m.name for m in pkgutil.walk_packages(aerflow.__path__, 'aerflow.')]\n"
        "assert set(skip) <= set(names), sorted(set(skip) - set(names))\n"
        "imported = []\n"
        "for name in names:\n"
        "    if name in skip:\n"
        "        continue\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except ImportError:  # an optional dependency this environment lacks\n"
        "        continue\n"
        "    imported.append(name)\n"
        "    if 'numba' in sys.modules:\n"
        "        sys.exit('numba loaded by ' + name)\n"
        "print(len(imported))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert int(result.stdout) > 100  # the check did import the package


# -- start-up ---------------------------------------------------------------------------------

FORBIDDEN = ("numba", "aerflow.render", "aerflow.tensors", "aerflow.devices", "aerflow.net")
"""What neither ``aerflow --help``, ``aerflow formats``, ``aerflow udev print`` nor any
``--help`` may load, but for the light modules of ``ALLOWED``."""

ALLOWED: dict[str, frozenset[str]] = {
    # command -> the light modules of a forbidden package it runs (each imports no numba and
    # none of its package's other modules, which the check still forbids)
    "udev print": frozenset({"aerflow.devices", "aerflow.devices.udev"}),
    "plot --help": frozenset({"aerflow.render", "aerflow.render.commands"}),
    # the picture sinks' declarations, listed with the others:
    "output --help": frozenset({"aerflow.render", "aerflow.render.components"}),
    "output file --help": frozenset({"aerflow.render", "aerflow.render.components"}),
}

NOT_YET_LIGHT: dict[str, str] = {
    # command -> what still loads too much, and where it is fixed. None today.
}


_PROBE = (
    "import atexit, os, runpy, sys\n"
    "def report():\n"
    "    with open(os.environ['AERFLOW_LOADED'], 'w', encoding='utf-8') as file:\n"
    "        file.write('\\n'.join(sorted(sys.modules)))\n"
    "atexit.register(report)\n"
    "runpy.run_module('aerflow', run_name='__main__', alter_sys=True)\n"
)
"""``python -m aerflow ARGUMENTS``, then the names in ``sys.modules`` at exit, into the file
that ``AERFLOW_LOADED`` names."""


def _loaded(folder: Path, *arguments: str) -> set[str]:
    """The modules ``python -X importtime -m aerflow ARGUMENTS`` imports: those importtime
    reports, and every other module in ``sys.modules`` at exit (importtime does not see a
    module loaded by ``importlib.import_module``, as the registry's providers and the lazy
    attributes of ``aerflow``, ``aerflow.render`` and ``aerflow.devices`` are). ``folder``
    holds the report for a moment."""
    report = folder / "loaded.txt"
    try:
        result = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", _PROBE, *arguments],
            capture_output=True,
            text=True,
            timeout=300,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "AERFLOW_LOADED": str(report)},
        )
        assert result.returncode == 0, result.stderr[-2000:]
        loaded = set(report.read_text(encoding="utf-8").split())
    finally:
        report.unlink(missing_ok=True)
    for line in result.stderr.splitlines():
        if line.startswith("import time:") and line.count("|") == 2:
            name = line.rpartition("|")[2].strip()
            if name != "imported package":
                loaded.add(name)
    assert "aerflow.cli.main" in loaded, result.stderr[-2000:]
    return loaded


LIGHT_COMMANDS = (
    "--help",
    "formats",
    "udev print",
    "info --help",
    "convert --help",
    "sample --help",
    "plot --help",
    "devices --help",
    "udev --help",
    "input --help",
    "input file --help",
    "filter --help",
    "output --help",
    "output file --help",
)


def _forbidden(command: str, loaded: set[str]) -> list[str]:
    allowed = ALLOWED.get(command, frozenset())
    return sorted(
        name
        for name in loaded - allowed
        if any(name == f or name.startswith(f + ".") for f in FORBIDDEN)
    )


@pytest.mark.parametrize(
    "command",
    [
        pytest.param(c, marks=pytest.mark.xfail(reason=NOT_YET_LIGHT[c], strict=True))
        if c in NOT_YET_LIGHT
        else c
        for c in LIGHT_COMMANDS
    ],
)
def test_command_starts_light(command: str, tmp_path: Path) -> None:
    loaded = _loaded(tmp_path, *command.split())
    forbidden = _forbidden(command, loaded)
    assert not forbidden, f"`aerflow {command}` loads {', '.join(forbidden[:12])}..."
    stale = sorted(ALLOWED.get(command, frozenset()) - loaded)
    assert not stale, f"remove from ALLOWED[{command!r}]: {stale}"


def test_the_start_up_check_sees_what_a_command_runs(tmp_path: Path) -> None:
    """The same check on a command that runs an encoder kernel: numba shows."""
    loaded = _loaded(tmp_path, "sample", str(tmp_path / "bar.raw"))
    assert (tmp_path / "bar.raw").stat().st_size > 0
    assert "numba" in _forbidden("sample", loaded)
