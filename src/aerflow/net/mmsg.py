"""UDP sockets, and Linux's sendmmsg / recvmmsg reached through ``ctypes``: many datagrams a
system call, into or out of slots of one buffer."""

from __future__ import annotations

import ctypes
import os
import socket
import sys
from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import NetworkError
from .address import Address

__all__ = ["MAX_VECTOR", "MMSG", "Vectors", "open_socket", "raise_errno"]

MAX_VECTOR = 1024
"""UIO_MAXIOV: the most messages one sendmmsg/recvmmsg call takes."""


class _IoVec(ctypes.Structure):
    _fields_ = (("base", ctypes.c_void_p), ("length", ctypes.c_size_t))


class _MsgHdr(ctypes.Structure):
    _fields_ = (
        ("name", ctypes.c_void_p),
        ("namelen", ctypes.c_uint32),
        ("iov", ctypes.c_void_p),
        ("iovlen", ctypes.c_size_t),
        ("control", ctypes.c_void_p),
        ("controllen", ctypes.c_size_t),
        ("flags", ctypes.c_int),
    )


class _MMsgHdr(ctypes.Structure):
    _fields_ = (("header", _MsgHdr), ("length", ctypes.c_uint))


def _load_mmsg() -> tuple[Any, Any] | None:
    """libc's (recvmmsg, sendmmsg), or None where they are not available."""
    if not sys.platform.startswith("linux") or ctypes.sizeof(ctypes.c_void_p) != 8:
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        recvmmsg = libc.recvmmsg
        sendmmsg = libc.sendmmsg
    except (OSError, AttributeError):
        return None
    recvmmsg.argtypes = (
        ctypes.c_int,
        ctypes.c_void_p,
        ctypes.c_uint,
        ctypes.c_int,
        ctypes.c_void_p,
    )
    recvmmsg.restype = ctypes.c_int
    sendmmsg.argtypes = (ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int)
    sendmmsg.restype = ctypes.c_int
    return recvmmsg, sendmmsg


MMSG = _load_mmsg()
"""libc's (recvmmsg, sendmmsg), or None where they are not available."""


def _bytes_at(address: int, size: int) -> npt.NDArray[np.uint8]:
    pointer = ctypes.cast(address, ctypes.POINTER(ctypes.c_uint8))
    array: npt.NDArray[np.uint8] = np.ctypeslib.as_array(pointer, shape=(size,))
    return array


class Vectors:
    """mmsghdr/iovec arrays describing ``slots`` slots of ``stride`` bytes in ``buffer``."""

    def __init__(self, buffer: npt.NDArray[np.uint8], stride: int, slots: int, size: int):
        self.buffer = buffer  # keeps the memory the vectors point into alive
        self.iov = (_IoVec * slots)()
        self.messages = (_MMsgHdr * slots)()
        base = buffer.ctypes.data
        for i in range(slots):
            self.iov[i].base = base + i * stride
            self.iov[i].length = size
            self.messages[i].header.iov = ctypes.addressof(self.iov[i])
            self.messages[i].header.iovlen = 1
        self.address = ctypes.addressof(self.messages)
        raw_iov = _bytes_at(ctypes.addressof(self.iov), ctypes.sizeof(self.iov))
        raw_msg = _bytes_at(self.address, ctypes.sizeof(self.messages))
        iov_step = ctypes.sizeof(_IoVec) // 8
        msg_step = ctypes.sizeof(_MMsgHdr) // 4
        self.iov_lengths = raw_iov.view(np.uint64)[_IoVec.length.offset // 8 :: iov_step]
        self.message_lengths = raw_msg.view(np.uint32)[_MMsgHdr.length.offset // 4 :: msg_step]

    def at(self, index: int) -> int:
        """Address of message ``index``."""
        return self.address + index * ctypes.sizeof(_MMsgHdr)


def raise_errno(action: str, where: Address) -> None:
    code = ctypes.get_errno()
    raise NetworkError(code, f"{action} {where}: {os.strerror(code)}")


def open_socket(address: Address) -> socket.socket:
    try:
        return socket.socket(address.family, socket.SOCK_DGRAM)
    except OSError as error:
        family = "IPv6" if address.family == socket.AF_INET6 else "IPv4"
        raise NetworkError(error.errno, f"cannot open an {family} UDP socket: {error}") from error
