"""Spec-complete Prophesee streams: EVT 3.0, EVT 2.0, EVT 2.1 and DAT files with known decodes.

Each strategy draws the events and triggers a file holds *and* one of the many byte encodings
the format allows for them: header variants, word orders, redundant and stateful words, words a
decoder must skip, counter wraps. The generator models what a decoder that follows the format
notes (``docs/formats/prophesee-raw.md``, ``evt3.md``, ``dat.md``) and OpenEB's decoders must
return, word by word, so it is an oracle of its own: it uses neither aerflow's writers nor the
reference decoders in ``tests/reference``.

Every builder takes a :class:`Choices` source, so the same code draws small shrinkable examples
from hypothesis (:class:`DrawnChoices`) and large seeded ones (:class:`SeededChoices`), and a
``without`` set naming liberties to leave out (``EVT3_LIBERTIES``, ``EVT2_LIBERTIES``,
``DAT_LIBERTIES``): what a stream may do beyond what cameras send, for readers that only follow
camera-like streams.

DAT times past 2**32 µs follow aerflow's documented unwrap rule (README: a drop of more than
2**31 µs between consecutive records is a wrap); the spec only infers that such times wrap,
and OpenEB's DAT reader unwraps nothing.

Only streams whose decode the spec makes unambiguous are generated. Left out on purpose, because
OpenEB's decoders or the notes disagree or say nothing (``tests/test_spec_streams_prophesee.py``
has a small test for each, checking only what every reading agrees on):

* EVT 3.0 vector words that reach past the sensor's right edge: OpenEB's HAL rejects a vector
  group whose base + 32 passes the width, the standalone decoder keeps the bits inside.
* EVT 3.0 column or vector words before the first ADDR_Y, and vector words before any
  VECT_BASE_X of the current row: the HAL drops them, the standalone decoder uses y = 0 and
  base 0. A new row always gets its own VECT_BASE_X here, since the HAL does not advance the
  base while a row is silenced.
* EVT 3.0 OTHERS followed by a partial CONTINUED_12/CONTINUED_4 payload (the HAL's basic
  validator swallows three words whatever they are), and an OTHERS less than three words from
  the end that has words with events after it (the HAL waits for more data there).
* EVT 3.0 word type 0x9 (absent from the type table) and TIME_HIGH steps back by less than
  2048 (a protocol violation that OpenEB only logs).
* EVT 2.0 GRAY_LEVEL / OPT_FLOW words (0xB, 0xC: "exist but are not generated"), and EVT 2.0 /
  2.1 TIME_HIGH steps back that are not counter loops.
* DAT polarity values other than 0 and 1 (C++ reads a 4-bit field, Metavision's Python tool
  bit 28 only), ``Version 1`` headers (OpenEB never picks the v1 layout from the header) and
  time steps back across a 2**32 boundary.
* CRLF header lines (OpenEB's standalone decoders compare ``% end`` byte for byte).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

import numpy as np
from hypothesis import strategies as st

__all__ = [
    "DAT_LIBERTIES",
    "EVENTS",
    "EVT2_LIBERTIES",
    "EVT3_LIBERTIES",
    "SENSORS",
    "TRIGGERS",
    "Choices",
    "DrawnChoices",
    "SeededChoices",
    "Stream",
    "build_dat",
    "build_evt2",
    "build_evt3",
    "build_evt21",
    "dat_streams",
    "evt2_streams",
    "evt3_streams",
    "evt21_streams",
]

T = TypeVar("T")

# The layouts aerflow documents (README), spelled out here so nothing is imported from it.
EVENTS = np.dtype([("t", "<u8"), ("x", "<u2"), ("y", "<u2"), ("on", "?")])
TRIGGERS = np.dtype([("t", "<u8"), ("id", "u1"), ("rising", "?")])

EventRow = tuple[int, int, int, bool]
TriggerRow = tuple[int, int, bool]

#: Sensor sizes worth trying besides random ones: real sensors, the 11-bit limit, slivers.
SENSORS = ((1280, 720), (640, 480), (320, 320), (304, 240), (2048, 2048), (1, 1), (12, 3), (8, 1))


# --------------------------------------------------------------------------------------------- #
# Sources of choices                                                                            #
# --------------------------------------------------------------------------------------------- #


class Choices(Protocol):
    """Where a builder's decisions come from."""

    def integer(self, low: int, high: int) -> int:
        """An integer in ``low..high`` (both included)."""
        ...

    def chance(self, percent: int) -> bool:
        """True about ``percent`` times in a hundred; False is the simpler answer."""
        ...

    def pick(self, options: Sequence[T]) -> T:
        """One of ``options``; the first is the simplest."""
        ...

    def permutation(self, items: Sequence[T]) -> list[T]:
        """``items`` in some order."""
        ...


class DrawnChoices:
    """Choices drawn by hypothesis, so failing examples shrink."""

    def __init__(self, draw: st.DrawFn) -> None:
        self._draw = draw

    def integer(self, low: int, high: int) -> int:
        return self._draw(st.integers(low, high))

    def chance(self, percent: int) -> bool:
        # Shrinks towards 0, hence towards False.
        return self._draw(st.integers(0, 99)) >= 100 - percent

    def pick(self, options: Sequence[T]) -> T:
        return self._draw(st.sampled_from(options))

    def permutation(self, items: Sequence[T]) -> list[T]:
        return self._draw(st.permutations(items))


class SeededChoices:
    """Choices from a seeded generator: large streams without hypothesis's size limits."""

    def __init__(self, seed: int) -> None:
        self._random = random.Random(seed)

    def integer(self, low: int, high: int) -> int:
        return self._random.randint(low, high)

    def chance(self, percent: int) -> bool:
        return self._random.randrange(100) < percent

    def pick(self, options: Sequence[T]) -> T:
        return options[self._random.randrange(len(options))]

    def permutation(self, items: Sequence[T]) -> list[T]:
        shuffled = list(items)
        self._random.shuffle(shuffled)
        return shuffled


# --------------------------------------------------------------------------------------------- #
# What a strategy draws                                                                         #
# --------------------------------------------------------------------------------------------- #


@dataclass(frozen=True)
class Stream:
    """A whole file and what decoding it must give."""

    format: str  # "evt3", "evt2", "evt21" or "dat"
    data: bytes  # the file: header, then payload
    payload_offset: int  # where the header ends
    events: np.ndarray  # EVENTS, in file order
    triggers: np.ndarray  # TRIGGERS, in file order
    width: int | None  # the sensor size the header states (None: DAT without Width/Height)
    height: int | None
    features: frozenset[str] = frozenset()  # what the encoding used, for hypothesis statistics

    @property
    def suffix(self) -> str:
        return ".dat" if self.format == "dat" else ".raw"

    @property
    def payload(self) -> bytes:
        """What follows the header (DAT: the type and size bytes, then the records)."""
        return self.data[self.payload_offset :]


def _events(rows: list[EventRow]) -> np.ndarray:
    array = np.zeros(len(rows), EVENTS)
    if rows:
        array["t"], array["x"], array["y"], array["on"] = zip(*rows, strict=True)
    return array


def _triggers(rows: list[TriggerRow]) -> np.ndarray:
    array = np.zeros(len(rows), TRIGGERS)
    if rows:
        array["t"], array["id"], array["rising"] = zip(*rows, strict=True)
    return array


def _sensor(c: Choices, max_side: int) -> tuple[int, int]:
    if c.chance(30):
        return c.integer(1, max_side), c.integer(1, max_side)
    return c.pick(SENSORS)


def _column(c: Choices, width: int, span: int = 1) -> int:
    """A column where ``span`` columns fit, often at the sensor's edges."""
    last = max(width - span, 0)
    return c.pick([c.integer(0, last), 0, last, max(last - c.integer(0, 3), 0)])


# --------------------------------------------------------------------------------------------- #
# RAW header (spec section 1)                                                                   #
# --------------------------------------------------------------------------------------------- #

_FORMAT_NAMES = {"evt3": "EVT3", "evt2": "EVT2", "evt21": "EVT21"}
_LEGACY_EVT = {"evt3": "3.0", "evt2": "2.0", "evt21": "2.1"}
# system_ID values the spec lists, by the encoding and geometry its table gives them.
_SYSTEM_IDS = {
    ("evt3", 1280, 720): (0x30, 0x31, 0x32, 0x1E),
    ("evt3", 640, 480): (0x28,),
    ("evt2", 640, 480): (0x15, 0x1C, 0x21, 0x22),
    ("evt2", 1280, 720): (0x1A, 0x1F, 0x27),
}
# Systems older than EVK2 Saphir (0x37) wrote legacy EVT 2.1, later ones little.
_LEGACY_EVT21_SYSTEMS = (0x28, 0x30, 0x31, 0x32, 0x1E)
_LITTLE_EVT21_SYSTEMS = (0x37, 0x38, 0x39, 0x40, 0x60)
# Keys real headers carry that say nothing about decoding. The system_ID table only applies
# to Prophesee integrators, so no other integrator name appears.
_EXTRA_KEYS = (
    ("date", "2021-06-01 12:34:56"),
    ("serial_number", "00ca0009"),
    ("sensor_generation", "4.2"),
    ("sensor_name", "IMX636"),
    ("plugin_name", "hal_plugin_imx636_evk4"),
    ("integrator_name", "Prophesee"),
    ("camera_integrator_name", "Prophesee"),
    ("plugin_integrator_name", "Prophesee"),
    ("firmware_version", "3.3.0"),
    ("subsystem_ID", "3"),
)


def _header_lines(c: Choices, entries: list[tuple[str, str]]) -> list[tuple[str, str]]:
    extras = [entry for entry in _EXTRA_KEYS if c.chance(25)]
    return c.permutation(entries + extras)


def _finish_header(
    c: Choices, lines: list[tuple[str, str]], payload: bytes, without: frozenset[str]
) -> bytes:
    """Header lines, with or without ``% end``. Without it the data must not start with "%"
    or it would read as one more header line (OpenEB takes any line starting with "%" as a
    header line, and expelliarmus then searches the data for a newline without end)."""
    text = "".join(f"% {key} {value}\n" for key, value in lines).encode("ascii")
    if "no % end" in without or c.chance(50) or payload[:1] == b"%":
        text += b"% end\n"
    return text


def _raw_header(
    c: Choices,
    fmt: str,
    width: int,
    height: int,
    payload: bytes,
    without: frozenset[str],
    order: str | None = None,
) -> bytes:
    """A RAW header naming ``fmt`` and the sensor size in one of the ways section 1 allows."""
    table = _SYSTEM_IDS.get((fmt, width, height), ())
    geometry_from = c.pick(["format", "geometry", "both", *(["system_ID"] if table else [])])
    format_options: list[str] = []
    entries: list[tuple[str, str]] = []
    if geometry_from in ("format", "both"):
        format_options += [f"height={height}", f"width={width}"]
    if geometry_from in ("geometry", "both"):
        entries.append(("geometry", f"{width}x{height}"))
    if geometry_from == "system_ID":
        entries.append(("system_ID", str(c.pick(table))))
    if fmt == "evt21":
        assert order is not None
        # Where the word order comes from: the format option, the endianness key (both must
        # agree when both are there), the system_ID default, or the overall default (little).
        sources = [
            "format",
            "key",
            "both",
            "system_ID",
            *(["default"] if order == "little" else []),
        ]
        order_from = c.pick(sources)
        if order_from in ("format", "both"):
            format_options.append(f"endianness={order}")
        if order_from in ("key", "both"):
            entries.append(("endianness", order))
        if order_from == "system_ID":
            systems = _LEGACY_EVT21_SYSTEMS if order == "legacy" else _LITTLE_EVT21_SYSTEMS
            entries.append(("system_ID", str(c.pick(systems))))
    # The legacy evt key names the encoding when no format key does.
    has_format = bool(format_options) or c.chance(50)
    if has_format:
        value = ";".join([_FORMAT_NAMES[fmt], *c.permutation(format_options)])
        entries.append(("format", value))
    if not has_format or c.chance(50):
        entries.append(("evt", _LEGACY_EVT[fmt]))
    return _finish_header(c, _header_lines(c, entries), payload, without)


def _stream(
    fmt: str,
    header: bytes,
    payload: bytes,
    events: list[EventRow],
    triggers: list[TriggerRow],
    size: tuple[int, int] | None,
    features: set[str],
) -> Stream:
    if b"% end\n" not in header:
        features.add("header without % end")
    return Stream(
        format=fmt,
        data=header + payload,
        payload_offset=len(header),
        events=_events(events),
        triggers=_triggers(triggers),
        width=size[0] if size else None,
        height=size[1] if size else None,
        features=frozenset(features),
    )


# --------------------------------------------------------------------------------------------- #
# EVT 3.0 (spec section 4)                                                                      #
# --------------------------------------------------------------------------------------------- #

E3_ADDR_Y, E3_ADDR_Y_EM, E3_ADDR_X, E3_VECT_BASE_X = 0x0, 0x1, 0x2, 0x3
E3_VECT_12, E3_VECT_8, E3_TIME_LOW, E3_CONTINUED_4 = 0x4, 0x5, 0x6, 0x7
E3_TIME_HIGH, E3_EXT_TRIGGER, E3_OTHERS, E3_CONTINUED_12 = 0x8, 0xA, 0xE, 0xF
E3_ERC_SUBTYPES = (0x014, 0x016)
E3_RUN_TYPES = (E3_VECT_BASE_X, E3_VECT_12, E3_VECT_8)
# Word types a decoder stores or ignores without output: unused 0xB/0xC, IMU 0xD, CONTINUED_4.
E3_SILENT_TYPES = (0xB, 0xC, 0xD, E3_CONTINUED_4)


#: What a stream may do beyond what cameras send, by the names ``without`` takes.
EVT3_LIBERTIES = frozenset(
    {
        "no % end",  # a header that ends without "% end"
        "prefix",  # words before the first TIME_HIGH
        "silenced rows",  # rows past the sensor, with the slave bit, EM rows (type 1)
        "time back",  # TIME_LOW steps back
        "time jumps",  # TIME_HIGH steps forward by more than 16
        "loops",  # 24-bit time loops of any kind
        "loop drops",  # loops other than 0xFFF -> 0
        "TIME_HIGH alone",  # a TIME_HIGH, changed or not, with no TIME_LOW right after it
        "any vector order",  # vector words other than VECT_12, VECT_12, VECT_8 groups
        "interleaved vectors",  # other words between the vector words of a run
        "triggers",
        "others",  # OTHERS words with or without payload, ERC counts
        "strays",  # unused, IMU and continuation words outside any OTHERS payload
    }
)


_WORD_DTYPES = {"evt3": "<u2", "evt2": "<u4", "evt21": "<u8"}


def _run(
    c: Choices,
    fmt: str,
    builder: _Evt3 | _Evt2 | _Evt21,
    sensor: tuple[int, int],
    steps: int,
    min_words: int,
    without: frozenset[str],
    order: str | None = None,
) -> Stream:
    """Drive a RAW format's word builder (prefix, start, ``steps`` steps, more until
    ``min_words`` words, finish) and wrap its words in a file."""
    builder.prefix(0 if "prefix" in without else c.integer(0, 3))
    builder.start()
    for _ in range(steps):
        builder.step()
    while len(builder.words) < min_words:
        builder.step()
    builder.finish()
    payload = np.array(builder.words, _WORD_DTYPES[fmt]).tobytes()
    header = _raw_header(c, fmt, *sensor, payload, without, order=order)
    return _stream(
        fmt, header, payload, builder.events, builder.triggers, sensor, features=builder.features
    )


class _Evt3:
    """An EVT 3.0 word stream and its decode, grown one step at a time.

    The decode follows OpenEB (spec section 4): time = loop * 2**24 + high * 2**12 + low; a
    TIME_HIGH that drops by 2048 or more is a loop; a TIME_HIGH that changes resets low to 0;
    ADDR_Y of type 0 inside the sensor opens a row whose X and vector words are CD events,
    any other ADDR_Y (type 1, bit 11 set, row past the sensor) silences them; each VECT_12 /
    VECT_8 word emits base + k for its set bits k, then advances the base by 12 / 8.
    """

    def __init__(self, c: Choices, width: int, height: int, without: frozenset[str]) -> None:
        self.c = c
        self.width = width
        self.height = height
        self.without = without
        self.words: list[int] = []
        self.events: list[EventRow] = []
        self.triggers: list[TriggerRow] = []
        self.loop = self.high = self.low = 0
        self.row_seen = False  # an ADDR_Y of either type came after the first TIME_HIGH
        self.row: int | None = None  # the row CD events go to; None while silenced
        self.base: int | None = None  # next vector column, once this row has a VECT_BASE_X
        self.polarity = False
        self.run = 0  # vector words since the last VECT_BASE_X
        self.bare_others = False  # the last word is an OTHERS without payload
        self.features: set[str] = set()

    def emit(self, kind: int, content: int) -> None:
        assert 0 <= content <= 0xFFF
        self.words.append((kind << 12) | content)
        self.bare_others = False

    def now(self) -> int:
        return (self.loop << 24) | (self.high << 12) | self.low

    # -- start-up ------------------------------------------------------------------------------
    def prefix(self, count: int) -> None:
        """Words before the first TIME_HIGH: decoders skip them whatever they are."""
        if count:
            self.features.add("words before the first TIME_HIGH")
        for _ in range(count):
            kind = self.c.pick([k for k in range(16) if k != E3_TIME_HIGH])
            self.emit(kind, self.c.integer(0, 0xFFF))

    def start(self) -> None:
        self.high = self.c.pick([self.c.integer(0, 0xFFF), 0, 0xFFF])
        self.emit(E3_TIME_HIGH, self.high)
        self.low_after_high()

    # -- steps ---------------------------------------------------------------------------------
    def time_high_same(self) -> None:
        self.emit(E3_TIME_HIGH, self.high)  # no change: TIME_LOW is kept
        self.low_after_high()

    def low_after_high(self) -> None:
        """Readings differ on what a TIME_HIGH alone does to TIME_LOW (OpenEB: kept when
        unchanged, 0 when changed; OpenEB's standalone sample: always 0; some peers: always
        kept): a TIME_LOW right after settles it."""
        if "TIME_HIGH alone" in self.without:
            self.time_low()

    def time_high_forward(self, least: int = 0) -> None:
        if self.high == 0xFFF:
            return
        lowest = max(self.high + 1, least)
        if self.c.chance(50):
            value = lowest
        elif "time jumps" in self.without:
            value = min(lowest + self.c.integer(0, 15), 0xFFF)
        else:
            value = self.c.integer(lowest, 0xFFF)
        self.emit(E3_TIME_HIGH, value)
        self.high, self.low = value, 0
        if not least:
            self.low_after_high()

    def time_high_wrap(self) -> None:
        """A 24-bit loop: as cameras send it (0xFFF, then 0) or any drop of 2048 or more."""
        if "loop drops" in self.without or self.c.chance(50):
            if self.high != 0xFFF:
                self.emit(E3_TIME_HIGH, 0xFFF)
                self.high = 0xFFF
            value = 0
            self.features.add("24-bit loop, 0xFFF to 0")
        else:
            if self.high < 2048:
                self.time_high_forward(least=2048)
            value = self.c.integer(0, self.high - 2048)
            self.features.add("24-bit loop, any drop of 2048 or more")
        self.emit(E3_TIME_HIGH, value)
        self.loop += 1
        self.high, self.low = value, 0
        self.low_after_high()

    def time_low(self) -> None:
        if "time back" in self.without or self.c.chance(70):
            value = min(self.low + self.c.integer(0, 5), 0xFFF)
        else:
            value = self.c.integer(0, 0xFFF)  # may step back: applied as it is
            if value < self.low:
                self.features.add("TIME_LOW steps back")
        self.emit(E3_TIME_LOW, value)
        self.low = value

    def addr_y(self) -> None:
        kinds = ["row", "row", "row", "em", "origin", *(["past"] if self.height < 2048 else [])]
        kind = "row" if "silenced rows" in self.without else self.c.pick(kinds)
        if kind == "row":
            y = self.c.integer(0, self.height - 1)
            self.emit(E3_ADDR_Y, y)
            self.row = y
        elif kind == "past":
            self.emit(E3_ADDR_Y, self.c.integer(self.height, 2047))
            self.row = None
        elif kind == "origin":  # bit 11 (the slave-camera bit) makes the row >= any height
            self.emit(E3_ADDR_Y, 0x800 | self.c.integer(0, 2047))
            self.row = None
        else:  # type 1: an exposure-measurement row, whose X words are not CD events
            self.emit(E3_ADDR_Y_EM, self.c.integer(0, 0xFFF))
            self.row = None
        self.row_seen = True
        self.base = None
        self.features.add(f"ADDR_Y: {kind}")

    def addr_x(self) -> None:
        on = self.c.chance(50)
        if self.row is None:
            x = self.c.integer(0, 2047)  # silenced: any column
        else:
            x = _column(self.c, self.width)
            self.events.append((self.now(), x, self.row, on))
        self.emit(E3_ADDR_X, (on << 11) | x)

    def vect_base_x(self) -> None:
        self.base = _column(self.c, self.width, span=self.c.pick([1, 8, 12]))
        self.polarity = self.c.chance(50)
        self.run = 0
        self.emit(E3_VECT_BASE_X, (self.polarity << 11) | self.base)

    def vector_sizes(self) -> list[int]:
        if self.base is None or "any vector order" in self.without:
            return []
        if "interleaved vectors" in self.without and self.words[-1] >> 12 not in E3_RUN_TYPES:
            return []
        return [size for size in (12, 8) if self.base + size <= self.width]

    def vector(self, size: int | None = None) -> None:
        assert self.base is not None
        size = size or self.c.pick(self.vector_sizes())
        if self.words[-1] >> 12 not in E3_RUN_TYPES:
            self.features.add("other words inside a vector run")
        if self.run == 0 and size == 8:
            self.features.add("VECT_8 right after VECT_BASE_X")
        self.run += 1
        if self.run == 4:
            self.features.add("4 or more vector words in a run")
        full = (1 << size) - 1
        mask = self.c.pick([self.c.integer(0, full), full, 0, 1 << self.c.integer(0, size - 1)])
        if self.row is not None:
            t = self.now()
            self.events += [
                (t, self.base + k, self.row, self.polarity) for k in range(size) if mask >> k & 1
            ]
        if size == 12:
            self.emit(E3_VECT_12, mask)
        else:
            self.emit(E3_VECT_8, (self.c.integer(0, 15) << 8) | mask)  # bits 11..8 unused
        self.base += size

    def trigger(self) -> None:
        channel = self.c.integer(0, 15)
        rising = self.c.chance(50)
        unused = self.c.integer(0, 0x7F) if self.c.chance(30) else 0
        self.emit(E3_EXT_TRIGGER, (channel << 8) | (unused << 1) | rising)
        self.triggers.append((self.now(), channel, rising))

    def others(self) -> None:
        if self.c.chance(40):
            subtype = self.c.pick(E3_ERC_SUBTYPES)
            payload = True  # ERC counts always carry their 12 + 12 + 4 bits
        else:
            subtype = self.c.integer(0, 0xFFF)
            if subtype in E3_ERC_SUBTYPES:
                subtype ^= 1
            payload = self.c.chance(50)
        self.emit(E3_OTHERS, subtype)
        if payload:
            self.emit(E3_CONTINUED_12, self.c.integer(0, 0xFFF))
            self.emit(E3_CONTINUED_12, self.c.integer(0, 0xFFF))
            self.emit(E3_CONTINUED_4, (self.c.integer(0, 0xFF) << 4) | self.c.integer(0, 15))
        else:
            self.bare_others = True
        erc = "ERC count " if subtype in E3_ERC_SUBTYPES else ""
        self.features.add(f"OTHERS {erc}{'with' if payload else 'without'} payload")

    def vector_run(self) -> None:
        """VECT_BASE_X, then vector words in any number and order, now and then with other
        words between them."""
        if "any vector order" in self.without:
            # As cameras send them: 32-column groups of VECT_12, VECT_12, VECT_8.
            self.base = _column(self.c, self.width, span=32)
            self.polarity = self.c.chance(50)
            self.run = 0
            self.emit(E3_VECT_BASE_X, (self.polarity << 11) | self.base)
            for _ in range(self.c.integer(0, 2)):
                if self.base + 32 > self.width:
                    break
                for size in (12, 12, 8):
                    self.vector(size)
            return
        self.vect_base_x()
        for _ in range(self.c.integer(0, 6)):
            if not self.vector_sizes():
                break
            if "interleaved vectors" not in self.without and self.c.chance(10):
                between = {"triggers": self.trigger, "others": self.others, "strays": self.stray}
                kept = [step for name, step in between.items() if name not in self.without]
                self.c.pick([self.addr_x, self.time_low, *kept])()
            self.vector()

    def stray(self) -> None:
        """A word that changes nothing. A CONTINUED_12 right after an OTHERS would be read as
        its payload, so none comes there."""
        kinds = [*E3_SILENT_TYPES, *([] if self.bare_others else [E3_CONTINUED_12])]
        self.emit(self.c.pick(kinds), self.c.integer(0, 0xFFF))

    def step(self) -> None:
        options: list[Callable[[], None]] = [
            self.addr_y,
            self.addr_y,
            self.time_low,
            self.time_low,
            self.time_high_same,
            self.time_high_forward,
        ]
        optional = {
            "loops": self.time_high_wrap,
            "triggers": self.trigger,
            "others": self.others,
            "strays": self.stray,
        }
        options += [step for name, step in optional.items() if name not in self.without]
        if self.row_seen:
            options += [self.addr_x] * 3 + [self.vector_run] * 3 + [self.vect_base_x]
        if self.vector_sizes():
            options += [self.vector] * 2
        chosen = self.c.pick(options)
        self.features.add(chosen.__name__)
        chosen()

    def finish(self) -> None:
        """OpenEB waits for three more words after an OTHERS before it decodes on: give the
        last one three that change nothing."""
        others = [i for i, w in enumerate(self.words) if w >> 12 == E3_OTHERS]
        while others and len(self.words) - others[-1] <= 3:
            self.emit(E3_TIME_HIGH, self.high)


def build_evt3(
    c: Choices,
    *,
    steps: int,
    sensor: tuple[int, int] | None = None,
    min_words: int = 0,
    without: frozenset[str] = frozenset(),
) -> Stream:
    """An EVT 3.0 file of ``steps`` drawn steps (more until it has ``min_words`` words),
    leaving out the liberties named in ``without`` (see :data:`EVT3_LIBERTIES`)."""
    assert without <= EVT3_LIBERTIES, without - EVT3_LIBERTIES
    width, height = sensor or _sensor(c, 2048)
    builder = _Evt3(c, width, height, without)
    return _run(c, "evt3", builder, (width, height), steps, min_words, without)


@st.composite
def evt3_streams(
    draw: st.DrawFn, max_steps: int = 60, without: frozenset[str] = frozenset()
) -> Stream:
    """EVT 3.0 files of up to ``max_steps`` steps (a step is one to a dozen words)."""
    c = DrawnChoices(draw)
    return build_evt3(c, steps=c.integer(0, max_steps), without=without)


# --------------------------------------------------------------------------------------------- #
# EVT 2.0 (spec section 2)                                                                      #
# --------------------------------------------------------------------------------------------- #

E2_CD_OFF, E2_CD_ON, E2_TIME_HIGH, E2_EXT_TRIGGER = 0x0, 0x1, 0x8, 0xA
E2_IMU, E2_OTHER, E2_CONTINUED = 0xD, 0xE, 0xF
E2_ERC_SUBTYPES = (0x0014, 0x0016)
E2_HIGH_MAX = (1 << 28) - 1
# A TIME_HIGH at least this far below the previous one is a loop of 2**34 µs (OpenEB:
# MaxTimestamp - LoopThreshold µs, in TIME_HIGH units rounded up).
E2_LOOP_DROP = -(-((E2_HIGH_MAX << 6) - 10_000) // 64)


#: What an EVT 2.0 or 2.1 stream may do beyond what cameras send (names for ``without``).
EVT2_LIBERTIES = frozenset(
    {
        "no % end",  # a header that ends without "% end"
        "prefix",  # words before the first TIME_HIGH
        "time back",  # 6-bit times that go back under one TIME_HIGH
        "time jumps",  # TIME_HIGH steps forward by more than 16
        "loops",  # 34-bit time loops of any kind
        "loop drops",  # loops other than the largest TIME_HIGH -> 0 (EVT 2.0 only)
        "triggers",
        "others",  # monitoring, IMU and continuation words
    }
)


class _Evt2:
    """An EVT 2.0 word stream and its decode: t = loop * 2**34 + TIME_HIGH * 64 + ts."""

    def __init__(self, c: Choices, width: int, height: int, without: frozenset[str]) -> None:
        self.c = c
        self.width = width
        self.height = height
        self.without = without
        self.words: list[int] = []
        self.events: list[EventRow] = []
        self.triggers: list[TriggerRow] = []
        self.loop = self.high = self.last_ts = 0
        self.features: set[str] = set()

    def emit(self, kind: int, content: int) -> None:
        assert 0 <= content < 1 << 28
        self.words.append((kind << 28) | content)
        if kind == E2_TIME_HIGH and content != self.high:
            self.last_ts = 0

    def time(self, ts: int) -> int:
        return (self.loop << 34) | (self.high << 6) | ts

    def ts(self) -> int:
        """The 6 low time bits of a word: any value, or never below the last one."""
        if "time back" in self.without:
            self.last_ts = min(self.last_ts + self.c.integer(0, 3), 63)
            return self.last_ts
        return self.c.pick([self.c.integer(0, 63), 0, 63])

    def prefix(self, count: int) -> None:
        for _ in range(count):
            kind = self.c.pick([k for k in range(16) if k != E2_TIME_HIGH])
            self.emit(kind, self.c.integer(0, (1 << 28) - 1))

    def start(self) -> None:
        self.high = self.c.pick([self.c.integer(0, E2_HIGH_MAX), 0, E2_HIGH_MAX])
        self.emit(E2_TIME_HIGH, self.high)

    def time_high_same(self) -> None:
        self.emit(E2_TIME_HIGH, self.high)

    def time_high_forward(self, least: int = 0) -> None:
        if self.high == E2_HIGH_MAX:
            return
        lowest = max(self.high + 1, least)
        if self.c.chance(50):
            value = lowest
        elif "time jumps" in self.without:
            value = min(lowest + self.c.integer(0, 15), E2_HIGH_MAX)
        else:
            value = self.c.integer(lowest, E2_HIGH_MAX)
        self.emit(E2_TIME_HIGH, value)
        self.high = value

    def time_high_wrap(self) -> None:
        """A 34-bit loop: the largest TIME_HIGH then 0, or any drop that counts as a loop."""
        if "loop drops" in self.without or self.c.chance(50):
            if self.high != E2_HIGH_MAX:
                self.emit(E2_TIME_HIGH, E2_HIGH_MAX)
                self.high = E2_HIGH_MAX
            value = 0
            self.features.add("34-bit loop, largest TIME_HIGH to 0")
        else:
            if self.high < E2_LOOP_DROP:
                self.time_high_forward(least=E2_LOOP_DROP)
            value = self.c.integer(0, self.high - E2_LOOP_DROP)
            self.features.add("34-bit loop, smallest drop or more")
        self.emit(E2_TIME_HIGH, value)
        self.loop += 1
        self.high = value

    def cd(self) -> None:
        on = self.c.chance(50)
        ts = self.ts()
        x = _column(self.c, self.width)
        y = self.c.integer(0, self.height - 1)
        self.emit(E2_CD_ON if on else E2_CD_OFF, (ts << 22) | (x << 11) | y)
        self.events.append((self.time(ts), x, y, on))

    def trigger(self) -> None:
        ts = self.ts()
        channel = self.c.integer(0, 31)
        rising = self.c.chance(50)
        unused = (self.c.integer(0, 0x1FF) << 13) | (self.c.integer(0, 0x7F) << 1)
        self.emit(
            E2_EXT_TRIGGER,
            (ts << 22) | (unused if self.c.chance(30) else 0) | (channel << 8) | rising,
        )
        self.triggers.append((self.time(ts), channel, rising))

    def other(self) -> None:
        """A monitoring word (skipped), ERC counts with their CONTINUED count word."""
        erc = self.c.chance(40)
        subtype = self.c.pick(E2_ERC_SUBTYPES) if erc else self.c.integer(0, 0xFFFF)
        head = (self.ts() << 22) | (self.c.integer(0, 31) << 17) | (self.c.integer(0, 1) << 16)
        self.emit(E2_OTHER, head | subtype)
        if erc or self.c.chance(50):
            self.emit(E2_CONTINUED, self.c.integer(0, (1 << 28) - 1))

    def imu(self) -> None:
        """An IMU sample: one IMU word and five CONTINUED words, all skipped."""
        for kind in (E2_IMU, *(E2_CONTINUED,) * 5):
            self.emit(kind, self.c.integer(0, (1 << 28) - 1))

    def continued(self) -> None:
        self.emit(E2_CONTINUED, self.c.pick([self.c.integer(0, (1 << 28) - 1), (1 << 28) - 1]))

    def finish(self) -> None:
        """Nothing waits for more words at the end of these formats."""

    def step(self) -> None:
        options: list[Callable[[], None]] = [
            self.cd,
            self.cd,
            self.cd,
            self.time_high_same,
            self.time_high_forward,
        ]
        optional = {
            "loops": [self.time_high_wrap],
            "triggers": [self.trigger],
            "others": [self.other, self.imu, self.continued],
        }
        for name, steps in optional.items():
            if name not in self.without:
                options += steps
        chosen = self.c.pick(options)
        self.features.add(chosen.__name__)
        chosen()


def build_evt2(
    c: Choices,
    *,
    steps: int,
    sensor: tuple[int, int] | None = None,
    min_words: int = 0,
    without: frozenset[str] = frozenset(),
) -> Stream:
    """An EVT 2.0 file, leaving out the liberties in ``without`` (:data:`EVT2_LIBERTIES`)."""
    assert without <= EVT2_LIBERTIES, without - EVT2_LIBERTIES
    width, height = sensor or _sensor(c, 2048)
    builder = _Evt2(c, width, height, without)
    return _run(c, "evt2", builder, (width, height), steps, min_words, without)


@st.composite
def evt2_streams(
    draw: st.DrawFn, max_steps: int = 60, without: frozenset[str] = frozenset()
) -> Stream:
    """EVT 2.0 files of up to ``max_steps`` steps (a step is one to six words)."""
    c = DrawnChoices(draw)
    return build_evt2(c, steps=c.integer(0, max_steps), without=without)


# --------------------------------------------------------------------------------------------- #
# EVT 2.1 (spec section 3)                                                                      #
# --------------------------------------------------------------------------------------------- #

E21_NEG, E21_POS, E21_TIME_HIGH, E21_EXT_TRIGGER = 0x0, 0x1, 0x8, 0xA
E21_OTHERS, E21_CONTINUED = 0xE, 0xF
E21_HIGH_MAX = (1 << 28) - 1


class _Evt21:
    """An EVT 2.1 word stream and its decode: t = loop * 2**34 + TIME_HIGH * 64 + ts.

    Each word is a 32-bit head (type, ts, x, y) and 32 more bits (the validity mask of CD
    words, unused or payload elsewhere), stored as the high half of a little-endian 64-bit
    word in ``little`` files and as the low half in ``legacy`` files. A loop is only counted
    when TIME_HIGH falls from its largest value to 0 (OpenEB: a drop of the whole range).
    """

    def __init__(
        self, c: Choices, width: int, height: int, order: str, without: frozenset[str]
    ) -> None:
        self.c = c
        self.width = width
        self.height = height
        self.order = order
        self.without = without
        self.words: list[int] = []
        self.events: list[EventRow] = []
        self.triggers: list[TriggerRow] = []
        self.loop = self.high = self.last_ts = 0
        self.features = {f"{order} word order"}

    def emit(self, kind: int, head: int, rest: int) -> None:
        assert 0 <= head < 1 << 28
        assert 0 <= rest < 1 << 32
        if kind == E21_TIME_HIGH and head != self.high:
            self.last_ts = 0
        head |= kind << 28
        self.words.append((head << 32) | rest if self.order == "little" else (rest << 32) | head)

    def time(self, ts: int) -> int:
        return (self.loop << 34) | (self.high << 6) | ts

    def ts(self) -> int:
        """The 6 low time bits of a word: any value, or never below the last one."""
        if "time back" in self.without:
            self.last_ts = min(self.last_ts + self.c.integer(0, 3), 63)
            return self.last_ts
        return self.c.pick([self.c.integer(0, 63), 0, 63])

    def unused(self, bits: int) -> int:
        return self.c.integer(0, (1 << bits) - 1) if self.c.chance(30) else 0

    def prefix(self, count: int) -> None:
        for _ in range(count):
            kind = self.c.pick([k for k in range(16) if k != E21_TIME_HIGH])
            self.emit(kind, self.c.integer(0, (1 << 28) - 1), self.c.integer(0, (1 << 32) - 1))

    def start(self) -> None:
        self.high = self.c.pick([self.c.integer(0, E21_HIGH_MAX), 0, E21_HIGH_MAX])
        self.emit(E21_TIME_HIGH, self.high, self.unused(32))

    def time_high_same(self) -> None:
        self.emit(E21_TIME_HIGH, self.high, self.unused(32))

    def time_high_forward(self) -> None:
        if self.high == E21_HIGH_MAX:
            return
        if self.c.chance(50):
            value = self.high + 1
        elif "time jumps" in self.without:
            value = min(self.high + 1 + self.c.integer(0, 15), E21_HIGH_MAX)
        else:
            value = self.c.integer(self.high + 1, E21_HIGH_MAX)
        self.emit(E21_TIME_HIGH, value, self.unused(32))
        self.high = value

    def time_high_wrap(self) -> None:
        if self.high != E21_HIGH_MAX:
            self.emit(E21_TIME_HIGH, E21_HIGH_MAX, self.unused(32))
        self.emit(E21_TIME_HIGH, 0, self.unused(32))
        self.loop += 1
        self.high = 0

    def cd(self) -> None:
        on = self.c.chance(50)
        ts = self.ts()
        x = _column(self.c, self.width)
        y = self.c.integer(0, self.height - 1)
        room = min(32, self.width - x)  # mask bits past the sensor stay clear
        full = (1 << room) - 1
        mask = self.c.pick([self.c.integer(0, full), full, 1, 0, 1 << self.c.integer(0, room - 1)])
        self.emit(E21_POS if on else E21_NEG, (ts << 22) | (x << 11) | y, mask)
        t = self.time(ts)
        self.events += [(t, x + k, y, on) for k in range(room) if mask >> k & 1]

    def trigger(self) -> None:
        ts = self.ts()
        channel = self.c.integer(0, 31)
        rising = self.c.chance(50)
        unused = (self.unused(9) << 13) | (self.unused(7) << 1)
        self.emit(E21_EXT_TRIGGER, (ts << 22) | unused | (channel << 8) | rising, self.unused(32))
        self.triggers.append((self.time(ts), channel, rising))

    def others(self) -> None:
        subtype = self.c.pick([0x0014, 0x0016, self.c.integer(0, 0xFFFF)])
        head = (self.ts() << 22) | (self.unused(5) << 17) | (self.c.integer(0, 1) << 16) | subtype
        self.emit(E21_OTHERS, head, self.c.integer(0, (1 << 32) - 1))

    def continued(self) -> None:
        self.emit(E21_CONTINUED, self.c.integer(0, (1 << 28) - 1), self.c.integer(0, (1 << 32) - 1))

    def finish(self) -> None:
        """Nothing waits for more words at the end of these formats."""

    def step(self) -> None:
        options: list[Callable[[], None]] = [
            self.cd,
            self.cd,
            self.cd,
            self.time_high_same,
            self.time_high_forward,
        ]
        optional = {
            "loops": [self.time_high_wrap],
            "triggers": [self.trigger],
            "others": [self.others, self.continued],
        }
        for name, steps in optional.items():
            if name not in self.without:
                options += steps
        chosen = self.c.pick(options)
        self.features.add(chosen.__name__)
        chosen()


def build_evt21(
    c: Choices,
    *,
    steps: int,
    sensor: tuple[int, int] | None = None,
    order: str | None = None,
    min_words: int = 0,
    without: frozenset[str] = frozenset(),
) -> Stream:
    """An EVT 2.1 file, leaving out the liberties in ``without`` (:data:`EVT2_LIBERTIES`)."""
    assert without <= EVT2_LIBERTIES, without - EVT2_LIBERTIES
    width, height = sensor or _sensor(c, 2048)
    order = order or c.pick(["little", "legacy"])
    builder = _Evt21(c, width, height, order, without)
    return _run(c, "evt21", builder, (width, height), steps, min_words, without, order=order)


@st.composite
def evt21_streams(
    draw: st.DrawFn,
    max_steps: int = 50,
    without: frozenset[str] = frozenset(),
    order: str | None = None,
) -> Stream:
    """EVT 2.1 files of up to ``max_steps`` steps, in ``order`` or either word order."""
    c = DrawnChoices(draw)
    return build_evt21(c, steps=c.integer(0, max_steps), without=without, order=order)


# --------------------------------------------------------------------------------------------- #
# DAT (spec section 5)                                                                          #
# --------------------------------------------------------------------------------------------- #

DAT_EVENT_2D, DAT_EVENT_CD, DAT_EXT_TRIGGER = 0x00, 0x0C, 0x0E
_DAT_CONTENTS = {
    DAT_EVENT_CD: ("CD", "EventCD"),
    DAT_EVENT_2D: ("Event2D", "N9Chronocam7Event2dE"),
    DAT_EXT_TRIGGER: ("ExtTrigger", "EventExtTrigger"),
}
_WRAP = 1 << 32


#: What a DAT file may do beyond what OpenEB writes (names for ``without``).
DAT_LIBERTIES = frozenset(
    {
        "no % end",  # a header that ends without "% end"
        "no Version",  # a header without the Version key
        "time back",  # a record earlier than the one before it (by up to 1000 µs)
        "loops",  # times past 2**32 µs, unwrapped by readers
        "event2d",  # Event2d (type 0x00) files
        "trigger files",  # external-trigger (type 0x0E) files
    }
)


def build_dat(
    c: Choices, *, records: int, kind: int | None = None, without: frozenset[str] = frozenset()
) -> Stream:
    """A DAT file: CD, Event2d or external-trigger records with 32-bit times.

    Times are unwrapped by their readers: a record more than 2**31 µs below the previous one
    starts a new 2**32 µs loop, so consecutive true times here differ by less than 2**31 and
    steps back never cross a loop boundary.
    """
    assert without <= DAT_LIBERTIES, without - DAT_LIBERTIES
    kinds = [DAT_EVENT_CD]
    kinds += [] if "event2d" in without else [DAT_EVENT_2D]
    kinds += [] if "trigger files" in without else [DAT_EXT_TRIGGER]
    kind = c.pick(kinds) if kind is None else kind
    sized = kind != DAT_EXT_TRIGGER and c.chance(60)
    width, height = (c.integer(1, 1 << 14), c.integer(1, 1 << 14)) if sized else (1 << 14,) * 2
    if sized and c.chance(50):
        width, height = c.pick(SENSORS)
    events: list[EventRow] = []
    triggers: list[TriggerRow] = []
    features = {f"type {kind:#04x}", "Width and Height" if sized else "no Width or Height"}
    body = bytearray()
    t = previous = c.pick([c.integer(0, _WRAP - 1), 0, _WRAP - 1 - c.integer(0, 100)])
    for index in range(records):
        if index:
            steps = ["same", "small", "large", "back", "edge"]
            if "time back" in without:
                steps.remove("back")
            step = c.pick(steps)
            if step == "small":
                t += c.integer(1, 1000)
            elif step == "large":
                t += c.integer(1, (1 << 31) - 1)
            elif step == "edge":  # just before the next 2**32 boundary, or just past it
                gap = _WRAP - t % _WRAP + c.integer(-3, 3)
                t += gap if 0 <= gap < 1 << 31 else c.integer(1, 1000)
            elif step == "back":
                t -= c.integer(0, min(t % _WRAP, 1000))
            if "loops" in without and t >= _WRAP:
                t = previous
            features.add(f"time step: {step}")
            if t // _WRAP > previous // _WRAP:
                features.add("32-bit wrap")
        previous = t
        if kind == DAT_EXT_TRIGGER:
            rising = c.chance(50)
            channel = c.integer(0, 63)
            pad = c.integer(0, (1 << 22) - 1) if c.chance(30) else 0
            word = (channel << 26) | (pad << 4) | rising
            triggers.append((t, channel, rising))
        else:
            x = _column(c, width)
            y = c.integer(0, height - 1)
            on = c.chance(50)
            word = x | (y << 14) | (on << 28)
            events.append((t, x, y, on))
        body += (t % _WRAP).to_bytes(4, "little") + word.to_bytes(4, "little")
    payload = bytes([kind, 8]) + bytes(body)
    lines = [("Data", f"file containing {c.pick(_DAT_CONTENTS[kind])} events.")]
    if "no Version" in without or c.chance(70):
        lines.append(("Version", "2"))
    if c.chance(50):
        lines.append(("Date", "2019-08-20 11:22:33"))
    if sized:
        lines += [("Width", str(width)), ("Height", str(height))]
    header = _finish_header(c, c.permutation(lines), payload, without)
    return _stream(
        "dat",
        header,
        payload,
        events,
        triggers,
        (width, height) if sized else None,
        features=features,
    )


@st.composite
def dat_streams(
    draw: st.DrawFn, max_records: int = 40, without: frozenset[str] = frozenset()
) -> Stream:
    """DAT files of up to ``max_records`` records: CD, Event2d or external triggers."""
    c = DrawnChoices(draw)
    return build_dat(c, records=c.integer(0, max_records), without=without)
