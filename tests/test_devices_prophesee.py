"""The Prophesee drivers (EVK4 family, EVK3 HD) against their emulated cameras.

The expected USB operations come from ``tests/reference/prophesee_sequences.py``, the spec's
tables transcribed independently of the drivers (checked against the protocol notes' file
itself when the shared folder beside the repository holds it; see
``docs/formats/usb-prophesee.md``). Where the drivers depart from neuromorphic-drivers (ND),
they follow the recommendations of usb-sequences §3.13 and §4.9, which are inferences [I], not
hardware observations; the reference applies each in one place, and every such value sits
behind a named constant in the driver modules:

- EVK4: delays after C1..C5 of 1 s, 1 s, 1 s, 1 s and 300 µs (the larger of ND and OpenEB);
  D3 = 0x212; OpenEB's illuminance bring-up waits; 0x602C after the ERC table read, bit 0
  cleared and written back (the emulated camera reads bit 1 as 1, so ND's 0x2 results); the
  seven biases OpenEB does not write keep their factory word's upper bits; the temperature
  and illuminance reads poll (5 and 10 reads); the y mask and pixel-mask rows are reversed
  as in ND (unresolved in the spec).
- EVK3 HD: OpenEB's waits after the PLL and analog writes; the four bias registers OpenEB
  writes at open; 0xB044 <- 0 at close; the bias burst written again after live bias changes.
"""

from __future__ import annotations

import itertools
import re
import struct
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import aerflow
import aerflow.devices
from aerflow.devices import _prophesee as pp
from aerflow.devices import prophesee_evk4
from aerflow.devices.prophesee_evk3_hd import Evk3HdBiases, Evk3HdConfiguration, Evk3HdDriver
from aerflow.devices.prophesee_evk4 import (
    Clock,
    Evk4Biases,
    Evk4Configuration,
    Evk4Driver,
    RateLimiter,
    pixel_mask_words,
)
from aerflow.emulators.base import EmulatedDevice
from aerflow.emulators.prophesee import PRODUCTS, EmulatedEvk3Hd, EmulatedEvk4
from aerflow.emulators.usb import EmulatedBackend, EmulatedHandle
from aerflow.errors import (
    ConfigurationError,
    DeviceError,
    DeviceNotFoundError,
    DeviceProtocolError,
    DeviceTimeoutError,
)
from aerflow.formats.evt3 import Evt3StreamDecoder
from aerflow.synthetic import SyntheticSensor

from .conftest import find_data_dir
from .helpers import assert_same_events, assert_same_triggers

try:
    from tests.reference import prophesee as ref_evt
    from tests.reference import prophesee_sequences as ref
except ImportError:  # pragma: no cover - bare `pytest`, tests/ on sys.path
    from reference import prophesee as ref_evt  # type: ignore[import-not-found,no-redef,unused-ignore]
    from reference import prophesee_sequences as ref  # type: ignore[import-not-found,no-redef,unused-ignore]

DATA_DIR = find_data_dir()
REAL_EVT3 = "evt3/expelliarmus_evt3_gen41_2020-09-14.raw"
SPEC = None if DATA_DIR is None else DATA_DIR.parent / "specs" / "usb-sequences.md"


def real_recording() -> Path:
    if DATA_DIR is None or not (DATA_DIR / REAL_EVT3).is_file():
        pytest.skip("the shared EVT 3.0 recording is not available")
    return DATA_DIR / REAL_EVT3


def attach(device: EmulatedDevice) -> EmulatedHandle:
    backend = EmulatedBackend([device])
    return backend.open(backend.devices()[0])


def open_evk4(
    device: EmulatedEvk4, configuration: Evk4Configuration | None = None
) -> tuple[Evk4Driver, EmulatedHandle]:
    handle = attach(device)
    serial = Evk4Driver.identify(handle)
    assert serial == device.serial
    driver = Evk4Driver(handle, serial)
    driver.open(configuration or Evk4Configuration())
    return driver, handle


def open_evk3_hd(
    device: EmulatedEvk3Hd, configuration: Evk3HdConfiguration | None = None
) -> tuple[Evk3HdDriver, EmulatedHandle]:
    handle = attach(device)
    serial = Evk3HdDriver.identify(handle)
    assert serial == device.serial
    driver = Evk3HdDriver(handle, serial)
    driver.open(configuration or Evk3HdConfiguration())
    return driver, handle


def assert_log(actual: list[tuple[Any, ...]], expected: list[tuple[Any, ...]]) -> None:
    """Equal logs, or the first difference with some context."""
    for index, (got, wanted) in enumerate(zip(actual, expected, strict=False)):
        if got != wanted:
            raise AssertionError(
                f"operation {index} differs: got {got!r}, expected {wanted!r}\n"
                f"before it: {actual[max(index - 3, 0) : index]!r}"
            )
    assert len(actual) == len(expected), (len(actual), len(expected), actual[len(expected) :])


def drain_stream(device: EmulatedDevice, length: int = 1 << 16) -> bytes:
    parts: list[bytes] = []
    while True:
        chunk = device.stream_chunk(length)
        if chunk is None:
            return b"".join(parts)
        assert len(chunk.data) > 0, "the output is not started"
        parts.append(bytes(chunk.data))


# -- the reference tables are the spec's ----------------------------------------------------------
def _spec_rows(text: list[str], title: str) -> list[tuple[str, int, int, float]]:
    start = next(i for i, line in enumerate(text) if line.startswith("### ") and title in line)
    rows: list[tuple[str, int, int, float]] = []
    for line in text[start + 1 :]:
        if line.startswith("#"):
            break
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if not line.startswith("|") or len(cells) < 5 or cells[1] != "W":
            if rows and not line.startswith("|"):
                break
            continue
        delay = 0.0
        found = re.match(r"([\d.]+)\s*(s|ms|µs)", cells[4])
        if found:
            scale = {"s": Decimal(1), "ms": Decimal("0.001"), "µs": Decimal("0.000001")}
            delay = float(Decimal(found.group(1)) * scale[found.group(2)])
        rows.append((cells[0], int(cells[2], 16), int(cells[3].split()[0], 16), delay))
    return rows


@pytest.mark.parametrize(
    ("title", "rows"),
    [
        ("3.2 Stop", ref.EVK4_STOP),
        ("3.3 Destroy", ref.EVK4_DESTROY),
        ("3.4 Init", ref.EVK4_INIT),
        ("3.5 Thermometer", ref.EVK4_SENSORS),
        ("4.2 Digital and MIPI init", ref.EVK3_HD_DIGITAL_INIT),
        ("4.4 Readout and analog init", ref.EVK3_HD_READOUT_INIT),
        ("4.7 Close", ref.EVK3_HD_CLOSE),
    ],
)
def test_reference_tables_are_the_specs(title: str, rows: ref.Rows) -> None:
    if SPEC is None or not SPEC.is_file():
        pytest.skip("the protocol notes (shared/specs) are not available")
    text = SPEC.read_text(encoding="utf-8").splitlines()
    assert list(rows) == _spec_rows(text, title)


# -- hand-computed encodings ------------------------------------------------------------------
def test_mask_words_by_hand() -> None:
    x = pp.x_mask_words({0, 33})
    assert x[0] == 0x00000001
    assert x[1] == 0x00000002
    assert not any(x[2:])
    assert pp.x_mask_words({1279})[39] == 0x80000000
    # Rows are reversed: row 719 is bit 0 of word 0, row 0 bit 15 of word 22, whose bits
    # 16..23 are always set.
    y = pp.y_mask_words({719})
    assert y[0] == 0x00000001
    assert y[22] == 0x00FF0000
    assert not any(y[1:22])
    y = pp.y_mask_words({0})
    assert y[22] == 0x00FF8000
    assert not any(y[:22])
    assert pp.y_mask_words({688})[0] == 0x80000000  # 719 - 688 = 31
    assert pp.y_mask_words({687})[1] == 0x00000001
    assert pp.y_mask_words(()) == (0,) * 22 + (0x00FF0000,)
    # ... and the spec's own recipe agrees on a spread of rows and columns.
    rows = {0, 1, 7, 8, 15, 16, 300, 703, 704, 718, 719}
    assert list(pp.y_mask_words(rows)) == ref.y_words(rows)
    columns = {0, 1, 31, 32, 640, 1278, 1279}
    assert list(pp.x_mask_words(columns)) == ref.x_words(columns)


def test_pixel_mask_words_by_hand() -> None:
    words = pixel_mask_words(((0, 0), (1279, 719), (5, 10)))
    assert words[0] == 0x82CF0000  # x 0, 719 - 0 = 0x2CF, enable
    assert words[1] == 0x800004FF  # x 1279, 719 - 719 = 0
    assert words[2] == 0x82C50005  # x 5, 709 = 0x2C5
    assert words[3:] == (0,) * 61
    pixels = tuple((x, (x * 7) % 720) for x in range(0, 1280, 20))
    assert list(pixel_mask_words(pixels)) == ref.pixel_words(pixels)


def test_bias_and_roi_words_by_hand() -> None:
    assert pp.bias_word(0x4D) == 0x11A1004D
    assert pp.bias_word(0x4D, vdac=0x50) == 0x11A1504D  # the init's C65
    assert Evk3HdBiases().words()["refr"] == 0x01A9CD44  # §4.5 J8
    assert Evk3HdBiases().words()["fo_n"] == 0x01210000  # J3, buf_en = 0
    assert Evk3HdBiases(pr=0xFF).words()["pr"] == 0x01A1C4FF
    assert pp.roi_ctrl(intersection=False, latch=False, running=False) == 0xF0005042
    assert pp.roi_ctrl(intersection=False, latch=True, running=False) == 0xF0005062
    assert pp.roi_ctrl(intersection=True, latch=True, running=False) == 0xF0005022
    assert pp.roi_ctrl(intersection=False, latch=True, running=True) == 0xF0005462
    assert pp.roi_ctrl(intersection=True, latch=True, running=True) == 0xF0005422
    assert pp.roi_ctrl(intersection=False, latch=False, running=True) == 0xF0005442
    assert pp.roi_ctrl(intersection=True, latch=False, running=True) == 0xF0005402


def test_register_frames_match_the_worked_examples() -> None:
    device = EmulatedEvk4()
    channel = pp.CommandChannel(attach(device), timeout=1.0, reply_length=1024, serial=None)
    channel.write(0x1014, 0x11A1504D)
    assert device.registers[0x1014] == 0x11A1504D
    assert channel.read(0x0014) == 0
    sent = list(device.log)
    assert sent == [("W", 0x1014, 0x11A1504D), ("R", 0x0014)]
    assert pp.REGISTER_FRAME.pack(0x40010102, 12, 0, 0x1014, 0x11A1504D) == bytes.fromhex(
        "02010140 0c000000 00000000 14100000 4d50a111"
    )
    assert pp.REGISTER_FRAME.pack(0x00010102, 12, 0, 0x0014, 1) == bytes.fromhex(
        "02010100 0c000000 00000000 14000000 01000000"
    )
    assert pp.LEGACY_WRITE_FRAME.pack(0x56, 0x1014, 0x1) == bytes.fromhex(
        "56000000 14100000 01000000"
    )


# -- identification ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("device", "evk4", "evk3_hd"),
    [
        (lambda: EmulatedEvk4(), True, False),
        (lambda: EmulatedEvk4(product="SilkyEvCam HD Lite v03.09.01C"), True, False),  # 0x35
        (lambda: EmulatedEvk3Hd(), False, True),
        (lambda: EmulatedEvk4(type_byte=0x00), False, False),  # CenturyArks VGA
        (lambda: EmulatedEvk4(type_byte=0x42), False, False),
        (lambda: EmulatedEvk3Hd(type_byte=0x31), True, False),
    ],
)
def test_identify_by_type_byte(device: Any, evk4: bool, evk3_hd: bool) -> None:
    emulated = device()
    handle = attach(emulated)
    for driver, owns in ((Evk4Driver, evk4), (Evk3HdDriver, evk3_hd)):
        emulated.log.clear()
        serial = driver.identify(handle)
        if owns:
            assert serial == emulated.serial
            assert emulated.log == ref.evk4_identify()
        else:
            assert serial is None
            assert emulated.log == [ref.TYPE_REQUEST]


def test_open_skips_other_boards(tmp_path: Path) -> None:
    path, _, _ = _generated(tmp_path)
    backend = EmulatedBackend(
        [EmulatedEvk4(path, type_byte=0x42), EmulatedEvk4(path, serial="00C0FFEE")]
    )
    with aerflow.devices.open(backend=backend) as camera:
        assert camera.serial == "00C0FFEE"
        assert camera.name == "prophesee_evk4"
    with pytest.raises(DeviceNotFoundError):
        aerflow.devices.open(backend=EmulatedBackend([EmulatedEvk3Hd(type_byte=0x42)]))


@pytest.mark.parametrize("product", list(PRODUCTS))
def test_clones_identify_by_their_strings(product: str) -> None:
    device = EmulatedEvk4(product=product)
    assert (device.info.vendor_id, device.info.product_id) in Evk4Driver.ids
    driver, _ = open_evk4(device)
    assert driver.product == product
    assert driver.manufacturer == PRODUCTS[product].manufacturer
    assert driver.sensor == ("IMX646" if "Lite" in product else "IMX636")
    driver.close()


@pytest.mark.parametrize(
    "options",
    [
        {"manufacturer": "Prophesee SA"},
        {"manufacturer": "IDS"},  # a prefix of a known name is not that name
        {"product": "UE-39B0XCP", "manufacturer": "CenturyArks "},
    ],
)
def test_unknown_manufacturer_is_refused(options: dict[str, Any]) -> None:
    device = EmulatedEvk4(**options)
    with pytest.raises(DeviceProtocolError, match="manufacturer"):
        open_evk4(device)
    assert ("W", 0x0004, 0xF0005042) not in device.log  # refused before any write


def test_truncated_or_padded_products_are_refused() -> None:
    for product in ("UE-39B0XC", "SilkyEvCam ", "EVK4 "):
        device = EmulatedEvk4()
        device.product = product
        with pytest.raises(DeviceProtocolError, match="product"):
            open_evk4(device)


# -- open, start and close sequences ---------------------------------------------------------
EVK4_CASES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "defaults": ({}, {}),
    "primary": ({"clock": Clock.INTERNAL_WITH_OUTPUT_ENABLED}, {"clock": "primary"}),
    "secondary": ({"clock": Clock.EXTERNAL}, {"clock": "secondary"}),
    "intersection": ({"mask_intersection_only": True}, {"intersection": True}),
    "trigger off": ({"enable_external_trigger": False}, {"trigger": False}),
    "rate limiter": (
        {"rate_limiter": RateLimiter(200, 4000)},
        {"limiter": (200, 4000)},
    ),
    "output off": ({"enable_output": False}, {"enable_output": False}),
    "masks and offsets": (
        {
            "biases": Evk4Biases(pr=-3, diff_on=10, unknown_2=4),
            "x_mask": range(100, 140),
            "y_mask": [0, 5, 719],
            "pixel_mask": [(3, 4), (1279, 0)],
            "mask_intersection_only": True,
            "rate_limiter": RateLimiter(100, 1),
        },
        {
            "offsets": (-3, 0, 0, 10, 0, 0, 0, 0, 0, 0, 0, 0, 4),
            "columns": tuple(range(100, 140)),
            "rows": (0, 5, 719),
            "pixels": ((3, 4), (1279, 0)),
            "intersection": True,
            "limiter": (100, 1),
        },
    ),
}


@pytest.mark.parametrize("case", list(EVK4_CASES))
def test_evk4_open_and_close_sequences(case: str) -> None:
    options, expected = EVK4_CASES[case]
    device = EmulatedEvk4()
    driver, _ = open_evk4(device, Evk4Configuration(**options))
    assert_log(device.log, ref.evk4_identify() + ref.evk4_open(**expected))
    assert device.streaming == expected.get("enable_output", True)
    device.log.clear()
    driver.close()
    assert_log(device.log, ref.evk4_close())
    assert not device.streaming


def test_evk4_factory_words_keep_their_upper_bits() -> None:
    """The seven biases OpenEB leaves alone keep the word read at open (§3.13 item 12)."""
    factory = dict(zip(ref.EVK4_BIAS_ADDRESSES, range(0x40, 0x4D), strict=True))
    words = {address: 0x0123_4500 | value for address, value in factory.items()}
    device = EmulatedEvk4(factory_biases=words)
    driver, _ = open_evk4(device, Evk4Configuration(biases=Evk4Biases(inv=1, fo=-1)))
    factory_words = tuple(words[address] for address in ref.EVK4_BIAS_ADDRESSES)
    offsets = (0, -1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0)
    assert_log(
        device.log,
        ref.evk4_identify() + ref.evk4_open(factory_words=factory_words, offsets=offsets),
    )
    assert ("W", 0x101C, 0x01234500 | 0x47) in device.log  # inv: factory word, value + 1
    assert ("W", 0x1004, 0x11A10000 | 0x40) in device.log  # fo: 0x11A10000 + value - 1
    assert driver.firmware_biases == dict(
        zip(Evk4Biases().__dict__, range(0x40, 0x4D), strict=True)
    )
    assert driver.biases_bounds()["pr"] == (-0x40, 255 - 0x40)
    device.log.clear()
    driver.close()
    assert_log(device.log, ref.evk4_close(factory_words))


class StillStreaming(EmulatedEvk4):
    """A camera that still sends data when the open drains the data endpoint (as after a
    program that did not close it)."""

    def write_register(self, address: int, value: int) -> None:
        super().write_register(address, value)
        if address == 0x7004:  # F1, just before the drain
            self._streaming = True


def test_evk4_drain_reads_until_empty(tmp_path: Path) -> None:
    path, events, _ = _generated(tmp_path)
    device = StillStreaming(path)
    open_evk4(device)
    drains = [entry for entry in device.log if entry[0] == "drain"]
    assert len(drains) > 1
    assert drains[-1] == ("drain", 0)
    assert all(n > 0 for _, n in drains[:-1])
    # The start rewinds the recording: the stream is whole.
    decoded, _ = _decode_in_chunks(drain_stream(device), [])
    assert_same_events(decoded, events)


def test_evk4_drain_gives_up_on_a_camera_that_keeps_streaming(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(prophesee_evk4, "DRAIN_MAXIMUM_READS", 3)
    path, _, _ = _generated(tmp_path)
    device = StillStreaming(path, loop=True)
    with pytest.raises(DeviceProtocolError, match="kept streaming"):
        open_evk4(device)
    drains = [entry[1] for entry in device.log if entry[0] == "drain"]
    assert len(drains) == 3
    assert all(n > 0 for n in drains)


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({}, {}),
        (
            {
                "biases": Evk3HdBiases(diff_on=0x80, blk=0),
                "x_mask": [0, 1279],
                "y_mask": range(700, 720),
                "mask_intersection_only": True,
                "rate_limiter": RateLimiter(150, 300_000),
            },
            {
                "biases": (0x69, 0x4A, 0x00, 0x00, 0x80, 0x50, 0x34, 0x44, 0x94, 0x00),
                "columns": (0, 1279),
                "rows": tuple(range(700, 720)),
                "intersection": True,
                "limiter": (150, 300_000),
            },
        ),
    ],
)
def test_evk3_hd_open_and_close_sequences(
    options: dict[str, Any], expected: dict[str, Any]
) -> None:
    device = EmulatedEvk3Hd()
    driver, _ = open_evk3_hd(device, Evk3HdConfiguration(**options))
    assert_log(device.log, ref.evk3_hd_identify() + ref.evk3_hd_open(**expected))
    assert device.streaming
    device.log.clear()
    driver.close()
    assert_log(device.log, ref.evk3_hd_close())
    assert not device.streaming


def test_sequences_take_no_real_time() -> None:
    """The open's seconds of delays are recorded, not slept."""
    device = EmulatedEvk4()
    started = time.perf_counter()
    open_evk4(device)
    elapsed = time.perf_counter() - started
    sleeps = [entry[1] for entry in device.log if entry[0] == "sleep"]
    assert sum(sleeps) > 4.0
    assert elapsed < sum(sleeps)  # had they been slept, it would have taken at least that long
    assert sleeps.count(1.0) == 4  # around the reset and the MIPI set-up


# -- live configuration updates -----------------------------------------------------------------
def test_evk4_update_writes_only_what_changed() -> None:
    device = EmulatedEvk4()
    first = Evk4Configuration()
    driver, _ = open_evk4(device, first)

    def update(previous: Evk4Configuration, new: Evk4Configuration) -> list[tuple[Any, ...]]:
        device.log.clear()
        driver.update_configuration(previous, new)
        return list(device.log)

    assert update(first, Evk4Configuration()) == []
    second = Evk4Configuration(biases=Evk4Biases(diff_off=-9))
    assert update(first, second) == [("W", 0x1018, 0x11A10000 + 0x49 - 9)]
    third = Evk4Configuration(biases=second.biases, x_mask=[5])
    assert update(second, third) == [("W", 0x2000, 0x20), ("W", 0x0004, 0xF0005462)]
    fourth = Evk4Configuration(biases=second.biases, x_mask=[5], mask_intersection_only=True)
    assert update(third, fourth) == [("W", 0x0004, 0xF0005422)]
    fifth = Evk4Configuration(
        biases=second.biases, x_mask=[5], mask_intersection_only=True, y_mask=[719]
    )
    assert update(fourth, fifth) == [("W", 0x4000, 0x1), ("W", 0x0004, 0xF0005422)]
    sixth = Evk4Configuration(
        biases=second.biases,
        x_mask=[5],
        mask_intersection_only=True,
        y_mask=[719],
        pixel_mask=[(7, 8)],
        enable_external_trigger=False,
        enable_output=False,
    )
    assert update(fifth, sixth) == [
        ("W", 0x9028, 0x2),
        ("W", 0x9100, 0x80000007 | (719 - 8) << 16),
        ("W", 0x7004, 0xC1FF),
    ]
    assert not device.streaming
    assert update(sixth, first) == [
        ("W", 0x9028, 0x0),
        ("W", 0x1018, 0x11A10049),
        ("W", 0x2000, 0x0),
        ("W", 0x4000, 0x0),
        ("W", 0x0004, 0xF0005462),
        ("W", 0x9100, 0x0),
        ("W", 0x7004, 0xC5FF),
    ]
    assert device.streaming


@pytest.mark.parametrize(
    "change",
    [
        {"clock": Clock.EXTERNAL},
        {"rate_limiter": RateLimiter()},
        {"biases": Evk4Biases(pr=200)},  # 0x7C + 200 > 255
        {"biases": Evk4Biases(hpf=-1)},  # 0 - 1 < 0
    ],
)
def test_evk4_update_refuses_before_writing(change: dict[str, Any]) -> None:
    device = EmulatedEvk4()
    driver, _ = open_evk4(device)
    device.log.clear()
    with pytest.raises(ConfigurationError):
        driver.update_configuration(Evk4Configuration(), Evk4Configuration(**change))
    assert device.log == []


def test_evk3_hd_update_writes_only_what_changed() -> None:
    device = EmulatedEvk3Hd()
    driver, _ = open_evk3_hd(device)
    first = Evk3HdConfiguration()
    device.log.clear()
    driver.update_configuration(first, Evk3HdConfiguration())
    assert device.log == []
    second = Evk3HdConfiguration(biases=Evk3HdBiases(refr=0x10))
    driver.update_configuration(first, second)
    # The burst again after a live bias change [I] (§4.9 item 9).
    assert device.log == [("W", 0x1020, 0x01A9CD10), ("W", 0x1100, 0x5)]
    device.log.clear()
    third = Evk3HdConfiguration(biases=second.biases, y_mask=[0])
    driver.update_configuration(second, third)
    assert device.log == [("W", 0x4000 + 4 * 22, 0x00FF8000), ("W", 0x0004, 0xF0005462)]
    device.log.clear()
    with pytest.raises(ConfigurationError, match="rate limiter"):
        driver.update_configuration(third, Evk3HdConfiguration(rate_limiter=RateLimiter()))
    assert device.log == []


# -- readouts -----------------------------------------------------------------------------------
def test_temperature_and_illuminance() -> None:
    device = EmulatedEvk4(temperature_celsius=35.0, illuminance=0x1ABCDEF)
    driver, _ = open_evk4(device)
    device.log.clear()
    # The ADC reads round((35 + 56) / 0.19) = 479; 479 * 0.19 - 56 = 35.01 °C.
    assert driver.temperature_celsius() == pytest.approx(35.01)
    assert device.log == [("W", 0x004C, 0x7647), ("R", 0x0050)]
    device.log.clear()
    assert driver.illuminance() == 0x1ABCDEF
    assert device.log == [("R", 0x0010)]
    assert device.registers[0x0050] == 0x800 | 479  # done bit, value
    device.temperature_celsius = 1.0  # the ADC reads 300: 300 * 0.19 - 56 = 1.0 °C
    assert driver.temperature_celsius() == pytest.approx(1.0)
    assert device.registers[0x0050] == 0x800 | 300


def test_readouts_that_never_finish() -> None:
    device = EmulatedEvk4(adc_ready=False)
    driver, _ = open_evk4(device)
    device.log.clear()
    with pytest.raises(DeviceTimeoutError):
        driver.temperature_celsius()
    assert device.log == [("W", 0x004C, 0x7647)] + [("R", 0x0050)] * 5
    device.registers[0x000C] = 0  # the illuminance counter off
    with pytest.raises(DeviceTimeoutError):
        driver.illuminance()


# -- bad replies and bad frames -----------------------------------------------------------------
class CorruptingEvk4(EmulatedEvk4):
    """Corrupts the reply to the command frame whose first byte matches ``first``."""

    def __init__(self, corrupt: Any, **options: Any) -> None:
        super().__init__(**options)
        self.corrupt = corrupt

    def _command(self, data: bytes) -> bytes | None:
        reply = super()._command(data)
        return None if reply is None else self.corrupt(data, reply)


READ, WRITE = bytes.fromhex("02010100"), bytes.fromhex("02010140")


def _reply_to(kind: bytes, address: int, change: Any) -> Any:
    def corrupt(data: bytes, reply: bytes) -> bytes:
        if data[:4] == kind and data[12:16] == struct.pack("<I", address):
            return bytes(change(reply))
        return reply

    return corrupt


@pytest.mark.parametrize(
    "corrupt",
    [
        # P14's read of 0x1000: another address echoed, no value, a failure, "unknown".
        _reply_to(READ, 0x1000, lambda r: r[:12] + struct.pack("<I", 0x1004) + r[16:]),
        _reply_to(READ, 0x1000, lambda r: r[:16]),
        _reply_to(READ, 0x1000, lambda r: struct.pack("<I", 0x80010102) + r[4:]),
        _reply_to(READ, 0x1000, lambda r: struct.pack("<II", 0x80000000, 0)),
        # A1's write of RoiCtrl: another register named, refused, a wrong length field.
        _reply_to(WRITE, 0x0004, lambda r: r[:12] + struct.pack("<I", 0x0008) + r[16:]),
        _reply_to(WRITE, 0x0004, lambda r: struct.pack("<IIIII", 0xC0010102, 12, 0, 4, 5)),
        _reply_to(WRITE, 0x0004, lambda r: r[:4] + struct.pack("<I", 16) + r[8:]),
        _reply_to(WRITE, 0x0004, lambda r: r[:8]),
    ],
)
def test_bad_replies_are_protocol_errors(corrupt: Any) -> None:
    device = CorruptingEvk4(corrupt)
    handle = attach(device)
    driver = Evk4Driver(handle, Evk4Driver.identify(handle) or "")
    with pytest.raises(DeviceProtocolError):
        driver.open(Evk4Configuration())


def test_bad_identification_replies() -> None:
    class ShortType(EmulatedEvk4):
        def control_read(self, *args: Any) -> bytes:
            return super().control_read(*args)[:1]

    with pytest.raises(DeviceProtocolError, match="type request"):
        Evk4Driver.identify(attach(ShortType()))
    bad_serial = CorruptingEvk4(lambda data, reply: reply[:10] if data[0] == 0x72 else reply)
    with pytest.raises(DeviceProtocolError, match="serial"):
        Evk4Driver.identify(attach(bad_serial))

    class German(EmulatedEvk4):
        def control_read(self, *args: Any) -> bytes:
            if args[1] == 0x06 and args[2] == 0x0300:
                return bytes((4, 3, 0x07, 0x04))
            return super().control_read(*args)

    with pytest.raises(DeviceProtocolError, match="English"):
        open_evk4(German())


def test_malformed_frames_stall() -> None:
    device = EmulatedEvk4()
    handle = attach(device)
    for frame in (
        b"\x72\x00\x00",  # shorter than a header
        bytes.fromhex("7200000004000000"),  # says 4 payload bytes, has none
        pp.REGISTER_FRAME.pack(0x40010102, 12, 0, 0x1000, 1)[:-4],  # length field is 12
        struct.pack("<IIII", 0x00010102, 8, 0, 0x1000),  # a read without a count
        struct.pack("<IIIII", 0x00010102, 12, 0, 0x1000, 0),  # a count of 0
    ):
        with pytest.raises(DeviceError):
            handle.bulk_write(0x02, frame, 1.0)
    with pytest.raises(DeviceError):
        handle.bulk_write(0x01, pp.SERIAL_REQUEST, 1.0)
    with pytest.raises(DeviceTimeoutError):
        handle.bulk_read(0x82, 1024, 1.0)  # nothing to reply to
    # An unknown command is answered with the "unknown command" property.
    handle.bulk_write(0x02, bytes.fromhex("1234000000000000"), 1.0)
    assert handle.bulk_read(0x82, 1024, 1.0) == struct.pack("<II", 0x80000000, 0)
    # The EVK3 HD's legacy firmware does not take the 20-byte frames.
    legacy = attach(EmulatedEvk3Hd())
    with pytest.raises(DeviceError):
        legacy.bulk_write(0x02, pp.REGISTER_FRAME.pack(0x40010102, 12, 0, 0x1000, 1), 1.0)


# -- configuration validation -------------------------------------------------------------------
@pytest.mark.parametrize(
    "build",
    [
        lambda: RateLimiter(0, 10),
        lambda: RateLimiter(1024, 10),
        lambda: RateLimiter(200, 0),
        lambda: RateLimiter(200, 1 << 22),
        lambda: RateLimiter(200, 10.5),  # type: ignore[arg-type]
        lambda: Evk4Biases(pr=256),
        lambda: Evk4Biases(fo=-256),
        lambda: Evk4Biases(hpf=True),
        lambda: Evk4Configuration(x_mask=[1280]),
        lambda: Evk4Configuration(y_mask=[-1]),
        lambda: Evk4Configuration(y_mask=[720]),
        lambda: Evk4Configuration(x_mask=["a"]),  # type: ignore[list-item]
        lambda: Evk4Configuration(pixel_mask=[(1280, 0)]),
        lambda: Evk4Configuration(pixel_mask=[(0, 720)]),
        lambda: Evk4Configuration(pixel_mask=[(1, 1), (1, 1)]),
        lambda: Evk4Configuration(pixel_mask=[(x, 0) for x in range(65)]),
        lambda: Evk4Configuration(pixel_mask=[1, 2]),  # type: ignore[list-item]
        lambda: Evk4Configuration(clock="sometimes"),  # type: ignore[arg-type]
        lambda: Evk4Configuration(enable_output=1),  # type: ignore[arg-type]
        lambda: Evk4Configuration(rate_limiter=(200, 10)),  # type: ignore[arg-type]
        lambda: Evk4Configuration(biases=Evk3HdBiases()),  # type: ignore[arg-type]
        lambda: Evk3HdBiases(pr=256),
        lambda: Evk3HdBiases(blk=-1),
        lambda: Evk3HdConfiguration(x_mask=[2000]),
        lambda: Evk3HdConfiguration(mask_intersection_only="yes"),  # type: ignore[arg-type]
    ],
)
def test_invalid_configurations(build: Any) -> None:
    with pytest.raises(ConfigurationError):
        build()


def test_configurations_normalise_their_collections() -> None:
    config = Evk4Configuration(x_mask=range(3, 0, -1), y_mask={7, 2}, pixel_mask=[[1, 2]])  # type: ignore[list-item]
    assert config.x_mask == (1, 2, 3)
    assert config.y_mask == (2, 7)
    assert config.pixel_mask == ((1, 2),)
    assert config == Evk4Configuration(x_mask=(1, 2, 3), y_mask=(2, 7), pixel_mask=((1, 2),))
    assert Evk4Configuration(clock="external").clock is Clock.EXTERNAL  # type: ignore[arg-type]


def test_configurations_in_files() -> None:
    from aerflow.devices.config_files import dump, from_mapping

    config = Evk4Configuration(
        x_mask=range(3), pixel_mask=[(1, 2)], clock=Clock.EXTERNAL, rate_limiter=RateLimiter()
    )
    text = dump(config)
    assert 'clock = "external"' in text
    assert "pixel_mask = [[1, 2]]" in text
    data = {"x_mask": [0, 1, 2], "pixel_mask": [[1, 2]], "clock": "external"}
    data["rate_limiter"] = {"reference_period_us": 200, "maximum_events_per_period": 4000}
    assert from_mapping(data, Evk4Configuration) == config
    assert from_mapping({"biases": {"blk": 7}}, Evk3HdConfiguration).biases.blk == 7
    with pytest.raises(ConfigurationError):
        from_mapping({"y_mask": [720]}, Evk3HdConfiguration)


def test_open_refuses_bias_offsets_out_of_range_before_writing() -> None:
    device = EmulatedEvk4()
    handle = attach(device)
    driver = Evk4Driver(handle, Evk4Driver.identify(handle) or "")
    with pytest.raises(ConfigurationError, match="unknown_2"):
        driver.open(Evk4Configuration(biases=Evk4Biases(unknown_2=255)))
    assert not [entry for entry in device.log if entry[0] == "W"]
    with pytest.raises(ConfigurationError):
        driver.open(Evk3HdConfiguration())
    with pytest.raises(ConfigurationError):
        Evk3HdDriver(handle, "0").open(Evk4Configuration())


# -- the live EVT 3.0 stream ----------------------------------------------------------------------
def _decode_in_chunks(data: bytes, cuts: list[int]) -> tuple[np.ndarray, np.ndarray]:
    decoder = Evt3StreamDecoder(1280, 720)
    events, triggers = [], []
    edges = [0, *sorted(cuts), len(data)]
    for start, end in itertools.pairwise(edges):
        packet = decoder.decode(np.frombuffer(data[start:end], np.uint8))
        events.append(packet.events)
        triggers.append(packet.triggers)
    return np.concatenate(events), np.concatenate(triggers)


def _vector_group_offsets(data: bytes) -> list[int]:
    words = np.frombuffer(data[: len(data) & ~1], "<u2")
    return [2 * int(i) for i in np.flatnonzero((words >> 12) == 0x4)]


def _check_splits(data: bytes, width: int = 1280, height: int = 720) -> None:
    expected_events, expected_triggers = ref_evt.decode_evt3(data, width, height)
    rng = np.random.default_rng(7)
    groups = _vector_group_offsets(data)
    splits: list[list[int]] = [[], [1], [len(data) - 1]]
    splits.append(sorted({int(c) for c in rng.integers(1, len(data), 200)}))
    splits.append(list(range(1, len(data), 997)))  # odd, arbitrary boundaries
    if groups:
        # Inside VECT_12 groups: after 1 byte, after 1 word, after 1.5 and 2 words.
        for offset in (1, 2, 3, 4, 5):
            splits.append([g + offset for g in groups[:: max(len(groups) // 50, 1)]])
    for cuts in splits:
        cuts = [c for c in cuts if 0 < c < len(data)]
        events, triggers = _decode_in_chunks(data, cuts)
        assert_same_events(events, expected_events)
        assert_same_triggers(triggers, expected_triggers)


def _raw_data(path: Path) -> bytes:
    data = path.read_bytes()
    return data[ref_evt.parse_header(data)[1] :]


def test_stream_decoder_on_the_real_recording() -> None:
    path = real_recording()
    data = _raw_data(path)
    _check_splits(data)
    events, _ = _decode_in_chunks(data, [])
    assert_same_events(events, aerflow.read(path))


def _generated(tmp_path: Path) -> tuple[Path, np.ndarray, np.ndarray]:
    """60 ms of the synthetic sensor, runs of events that become vector groups, triggers."""
    rng = np.random.default_rng(5)
    sensor = SyntheticSensor(1280, 720, duration="60ms", rate=400_000, seed=3).read().events
    runs = []
    for k in range(400):
        columns = np.flatnonzero(rng.random(32) < 0.4)
        run = np.zeros(len(columns), aerflow.EVENTS_DTYPE)
        run["t"] = k * 150
        run["x"] = (k * 37) % (1280 - 32) + columns
        run["y"] = (k * 11) % 720
        run["on"] = k % 2 == 0
        runs.append(run)
    events = np.concatenate([*runs, sensor])
    events = events[np.argsort(events["t"], kind="stable")]
    triggers = np.zeros(40, aerflow.TRIGGERS_DTYPE)
    triggers["t"] = np.sort(rng.integers(0, 60_000, 40))
    triggers["id"] = rng.integers(0, 16, 40)
    triggers["rising"] = rng.random(40) < 0.5
    path = tmp_path / "generated.npz"
    aerflow.write(path, events, triggers=triggers, width=1280, height=720)
    return path, events, triggers


def test_stream_decoder_on_a_generated_recording(tmp_path: Path) -> None:
    path, events, triggers = _generated(tmp_path)
    device = EmulatedEvk4(path)
    open_evk4(device)
    data = drain_stream(device)
    assert _vector_group_offsets(data)
    _check_splits(data)
    decoded, decoded_triggers = _decode_in_chunks(data, [])
    assert_same_events(decoded, events)
    assert_same_triggers(decoded_triggers, triggers)


def test_stream_decoder_state() -> None:
    decoder = Evt3StreamDecoder(1280, 720)
    # TIME_HIGH 1, TIME_LOW 2, ADDR_Y 10, VECT_BASE_X 100 (ON), VECT_12 x2, VECT_8, ADDR_X 5.
    words = [0x8001, 0x6002, 0x000A, 0x3800 | 100, 0x4003, 0x4000, 0x5001, 0x2005]
    data = struct.pack(f"<{len(words)}H", *words)
    assert decoder.current_t == 0
    # Cut inside the vector run and inside its VECT_8 word: each whole word is decoded at once.
    first = decoder.decode(np.frombuffer(data[:13], np.uint8))
    assert first.events["x"].tolist() == [100, 101]
    assert decoder.pending_bytes == 1
    assert decoder.current_t == (1 << 12) | 2
    second = decoder.decode(np.frombuffer(data[13:], np.uint8))
    assert second.events["x"].tolist() == [124, 5]
    assert second.events["on"].tolist() == [True, False]
    assert decoder.pending_bytes == 0
    assert decoder.dropped_out_of_range == 0
    # An ERC-count word and its payload words, cut after the first, then two events.
    words = [0xE014, 0xF000, 0xF000, 0x7000, 0x2007, 0x2000 | 1300]
    data = struct.pack(f"<{len(words)}H", *words)
    assert len(decoder.decode(np.frombuffer(data[:3], np.uint8)).events) == 0
    assert decoder.pending_bytes == 1
    third = decoder.decode(np.frombuffer(data[3:], np.uint8))
    assert third.events["x"].tolist() == [7]
    assert decoder.dropped_out_of_range == 1  # x 1300 lies outside the sensor


def test_emulated_stream_plays_the_raw_bytes() -> None:
    path = real_recording()
    device = EmulatedEvk4(path)
    assert device.stream_chunk(1024) is not None
    assert len(device.stream_chunk(1024).data) == 0  # type: ignore[union-attr]  # not started
    handle = attach(device)
    assert handle.bulk_read(0x81, 1024, 1.0) == b""  # a drain read outside streaming
    open_evk4(device)
    assert drain_stream(device, 1000) == _raw_data(path)


@pytest.mark.parametrize("buffer_length", [512, 1 << 17])
def test_camera_end_to_end(tmp_path: Path, buffer_length: int) -> None:
    path, events, triggers = _generated(tmp_path)
    backend = aerflow.devices.emulate("evk4", recording=path)
    collected = []
    collected_triggers = []
    with aerflow.devices.open(backend=backend, buffer_length=buffer_length) as camera:
        assert camera.name == "prophesee_evk4"
        for _, packet in camera:
            collected.append(packet.events)
            collected_triggers.append(packet.triggers)
    assert_same_events(np.concatenate(collected), events)
    assert_same_triggers(np.concatenate(collected_triggers), triggers)
    device = backend.emulated[0]
    assert device.log[-1] == ("W", 0xB07C, 0x00000000)  # closed: the destroy block's end


def test_camera_end_to_end_real_recording() -> None:
    path = real_recording()
    for model in ("evk4", "evk3_hd"):
        backend = aerflow.devices.emulate(model, recording=path)
        with aerflow.devices.open(backend=backend) as camera:
            events = np.concatenate([packet.events for _, packet in camera])
        assert_same_events(events, aerflow.read(path))


def test_loop_replays_with_a_clock_that_goes_on(tmp_path: Path) -> None:
    path, events, _ = _generated(tmp_path)
    device = EmulatedEvk4(path, loop=True)
    open_evk4(device)
    decoder = Evt3StreamDecoder(1280, 720)
    decoded: list[np.ndarray] = []
    ends: list[int | None] = []
    while sum(len(e) for e in decoded) < 3 * len(events):
        chunk = device.stream_chunk(5000)
        assert chunk is not None
        ends.append(chunk.t_end)
        decoded.append(decoder.decode(np.frombuffer(chunk.data, np.uint8)).events)
    everything = np.concatenate(decoded)
    assert np.all(np.diff(everything["t"].astype(np.int64)) >= 0)
    known = [t for t in ends if t is not None]
    assert known == sorted(known)
    first, second = everything[: len(events)], everything[len(events) : 2 * len(events)]
    assert_same_events(first, events)
    shift = int(second["t"][0]) - int(first["t"][0])
    assert shift > 0
    assert shift % 4096 == 0
    shifted = first.copy()
    shifted["t"] += np.uint64(shift)
    assert_same_events(second, shifted)


def test_emulated_products_and_serials() -> None:
    assert EmulatedEvk4(serial="1a2b").serial == "00001A2B"
    with pytest.raises(ValueError, match="hex"):
        EmulatedEvk4(serial="not hex")
    with pytest.raises(ValueError, match="product"):
        EmulatedEvk4(product="EVK5")
    lite = EmulatedEvk4(product="SilkyEvCam HD Lite v03.09.01C")
    assert (lite.info.vendor_id, lite.info.product_id, lite.type_byte) == (0x31F7, 0x0004, 0x35)
    ids = (EmulatedEvk3Hd().info.vendor_id, EmulatedEvk3Hd().info.product_id)
    assert ids in Evk3HdDriver.ids
    assert EmulatedEvk4().info != EmulatedEvk4().info  # distinct bus addresses


def test_stream_decoder_grows_past_one_event_per_word() -> None:
    """Full vector groups yield 32 events per 3 words, and many triggers in a row: both
    outputs must grow within one chunk without losing or repeating anything."""
    words = [0x8000 | 5, 0x6000 | 7, 0x0000 | 10]  # TIME_HIGH, TIME_LOW, ADDR_Y 10
    for group in range(300):
        words += [0x3000 | (1 << 11) | 64, 0x4FFF, 0x4FFF, 0x50FF]  # base x 64, 32 ON events
        words += [0xA000 | ((group % 16) << 8) | (group & 1)]  # a trigger after each group
    data = np.array(words, "<u2").tobytes()
    events, triggers = _decode_in_chunks(data, [])
    assert len(events) == 300 * 32
    assert len(triggers) == 300
    _check_splits(data)
