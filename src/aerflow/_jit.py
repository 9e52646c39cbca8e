"""Numba kernels compiled when first called, so that importing aerflow never imports numba.

``@njit(nogil=True, cache=True)`` replaces ``@numba.njit(...)``: the decorated function stays
plain Python until its first call, which imports numba and compiles the function (or loads it
from numba's cache). Importing numba and loading the first cached kernel cost about 0.3-0.4 s,
more than a command on a small recording needs in all; :func:`interpreted` lets such a command
(``aerflow info`` or ``aerflow convert`` on a small file) run every kernel as plain Python
instead.

A kernel calling another kernel (a global or a module's attribute) sees the callee as numba
sees any dispatcher: typed by ``_numba_type_``, inlined by its ``targetoptions``, compiled when
the caller is. A module's names stay bound to the kernels, so :func:`interpreted` runs plain
Python all the way down.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import numpy as np

__all__ = ["Kernel", "interpreted", "is_interpreted", "njit"]

F = TypeVar("F", bound=Callable[..., Any])

_compiling = threading.RLock()
_interpreted_depth = 0
_interpreted_lock = threading.Lock()


class Kernel:
    """A function numba compiles on its first call (see the module's docstring)."""

    def __init__(self, function: Callable[..., Any], options: dict[str, Any]) -> None:
        functools.update_wrapper(self, function)
        self.py_func = function
        self._options = options
        self._dispatcher: Any = None

    def dispatcher(self) -> Any:
        """The numba dispatcher, made (and numba imported) on first use."""
        if self._dispatcher is None:
            with _compiling:
                if self._dispatcher is None:
                    import numba

                    self._dispatcher = numba.njit(**self._options)(self.py_func)
        return self._dispatcher

    @property
    def _numba_type_(self) -> Any:
        # how numba types any object naming a kernel: a global, a module attribute, an argument
        return self.dispatcher()._numba_type_

    @property
    def targetoptions(self) -> dict[str, Any]:
        # what numba's inliner reads, with ``py_func``, to inline ``inline="always"`` callees
        return self._options

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if _interpreted_depth:
            # NumPy's scalars warn where numba's silently wrap or cast, as the kernels expect
            with np.errstate(all="ignore"):
                return self.py_func(*map(_as_numba_sees_it, args), **kwargs)
        return self.dispatcher()(*args, **kwargs)

    def __reduce__(self) -> str:
        # pickled by reference, as functions are: its module's attribute of the same name
        return str(self.py_func.__qualname__)

    def __repr__(self) -> str:
        return f"<kernel {self.py_func.__module__}.{self.py_func.__qualname__}>"


def njit(**options: Any) -> Callable[[F], F]:
    """``numba.njit(**options)``, compiled on the kernel's first call."""

    def decorate(function: F) -> F:
        return Kernel(function, options)  # type: ignore[return-value]

    return decorate


def _as_numba_sees_it(argument: Any) -> Any:
    """A structured array as numba presents it to a kernel: items are records whose fields
    are read and written as attributes (``out[n].t = t``)."""
    if isinstance(argument, np.ndarray) and argument.dtype.names is not None:
        return _Records(argument)
    return argument


class _Records:
    """A structured array whose items are :class:`_Record` views (much quicker in Python
    than ``np.recarray`` items); anything else is the array's own."""

    __slots__ = ("_array", "_columns")

    def __init__(self, array: np.ndarray) -> None:
        self._array = array
        self._columns = {name: array[name] for name in array.dtype.names or ()}

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, (int, np.integer)):
            return _Record(self._columns, index)
        if isinstance(index, str):
            return self._columns[index]
        return _Records(self._array[index])

    def __setitem__(self, index: Any, value: Any) -> None:
        self._array[index] = value

    def __len__(self) -> int:
        return len(self._array)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._array, name)


class _Record:
    __slots__ = ("_columns", "_index")

    def __init__(self, columns: dict[str, np.ndarray], index: Any) -> None:
        object.__setattr__(self, "_columns", columns)
        object.__setattr__(self, "_index", index)

    def __getattr__(self, name: str) -> Any:
        try:
            return self._columns[name][self._index]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        self._columns[name][self._index] = value


@contextmanager
def interpreted() -> Iterator[None]:
    """Run every kernel as plain Python while inside (in every thread): for work so small that
    loading numba would cost more than the work. The results are the compiled kernels'."""
    global _interpreted_depth
    with _interpreted_lock:
        _interpreted_depth += 1
    try:
        yield
    finally:
        with _interpreted_lock:
            _interpreted_depth -= 1


def is_interpreted() -> bool:
    """Whether kernels run as plain Python now (inside :func:`interpreted`)."""
    return _interpreted_depth > 0
