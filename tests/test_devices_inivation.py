"""iniVation DVXplorer and DAVIS346: drivers, word-stream decoders and emulated devices.

The drivers run unchanged against the emulated devices; every request they make is compared
with the sequences transcribed by hand from the protocol tables
(``tests/reference/inivation_sequences.py``), and the numba decoders with a plain-Python
decoder written from the protocol text (``tests/reference/inivation_words.py``).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import aerflow
from aerflow import devices
from aerflow.devices import _inivation as ini
from aerflow.devices.inivation_davis346 import (
    ActivityFilter,
    Davis346Biases,
    Davis346Configuration,
    Davis346Driver,
    PolarityFilter,
    RegionOfInterest,
    bias_register,
    coarse_fine,
)
from aerflow.devices.inivation_dvxplorer import (
    PRESETS,
    DvxplorerBiases,
    DvxplorerConfiguration,
    DvxplorerDriver,
)
from aerflow.devices.inivation_stream import Davis346StreamDecoder, DvxplorerStreamDecoder
from aerflow.devices.usb import CONTROL_IN_VENDOR, CONTROL_OUT_VENDOR, TransferStatus
from aerflow.emulators.inivation import EmulatedDavis346, EmulatedDvxplorer
from aerflow.emulators.inivation_words import encode_words, frame_words, imu_words
from aerflow.emulators.usb import EmulatedBackend, EmulatedHandle
from aerflow.errors import ConfigurationError, DeviceError, DeviceProtocolError
from aerflow.events import EVENTS_DTYPE, IMU_DTYPE, TRIGGERS_DTYPE, Packet, concatenate_packets

try:
    from tests.reference import inivation_sequences as seq
    from tests.reference import inivation_words as ref
except ImportError:  # pragma: no cover - bare `pytest`, tests/ on sys.path
    from reference import inivation_sequences as seq  # type: ignore[no-redef]
    from reference import inivation_words as ref  # type: ignore[no-redef]

import itertools

from .conftest import DATA_DIR

DVXPLORER_SAMPLE = "aedat4/tonic_sample_dvxplorer.aedat4"

# --------------------------------------------------------------------------------- helpers


def tiny_recording(width: int = 64, height: int = 48, count: int = 200, seed: int = 1) -> Packet:
    rng = np.random.default_rng(seed)
    events = np.zeros(count, EVENTS_DTYPE)
    events["t"] = np.sort(rng.integers(0, 100_000, count))
    events["x"] = rng.integers(0, width, count)
    events["y"] = rng.integers(0, height, count)
    events["on"] = rng.random(count) < 0.5
    return Packet(events)


def opened(
    emulated: EmulatedDvxplorer | EmulatedDavis346, configuration: Any = None
) -> tuple[Any, EmulatedHandle]:
    backend = EmulatedBackend([emulated])
    handle = backend.open(backend.devices()[0])
    driver_type = DvxplorerDriver if isinstance(emulated, EmulatedDvxplorer) else Davis346Driver
    serial = driver_type.identify(handle)
    assert serial is not None
    driver = driver_type(handle, serial)
    emulated.log.clear()
    driver.open(configuration)
    return driver, handle


def stream_all(handle: EmulatedHandle, *, limit: int | None = None) -> list[bytes]:
    """Every chunk until the end of the recording (or ``limit`` bytes)."""
    chunks: list[bytes] = []
    ended: list[TransferStatus] = []

    def callback(view: memoryview, status: TransferStatus) -> None:
        if status is TransferStatus.COMPLETED:
            chunks.append(bytes(view))
        else:
            ended.append(status)

    handle.start_stream(0x82, 1 << 16, 4, callback)
    deadline = time.monotonic() + 30
    while not ended and time.monotonic() < deadline:
        if limit is not None and sum(map(len, chunks)) >= limit:
            break
        time.sleep(0.002)
    handle.stop_stream()
    assert ended or limit is not None, "the emulated stream did not end"
    return chunks


def decode_in_chunks(decoder: Any, data: bytes, rng: np.random.Generator) -> Packet:
    """Feed ``data`` in random pieces, odd lengths and empty ones included."""
    cuts = np.sort(rng.integers(0, len(data) + 1, rng.integers(0, 40)))
    pieces = np.split(np.frombuffer(data, np.uint8), cuts)
    return concatenate_packets([decoder.decode(piece) for piece in pieces])


def sort_events(events: np.ndarray) -> np.ndarray:
    events = np.asarray(events)
    order = np.lexsort((events["on"], events["y"], events["x"], events["t"]))
    out = np.zeros(len(events), ref.EVENTS)
    for name in ("t", "x", "y", "on"):
        out[name] = events[name][order]
    return out


def assert_same_events(ours: np.ndarray, expected: np.ndarray) -> None:
    assert len(ours) == len(expected)
    for name in ("t", "x", "y", "on"):
        np.testing.assert_array_equal(ours[name], expected[name], err_msg=name)


def assert_same_triggers(ours: np.ndarray, expected: np.ndarray) -> None:
    assert len(ours) == len(expected)
    for name in ("t", "id", "rising"):
        np.testing.assert_array_equal(ours[name], expected[name], err_msg=name)


def assert_same_imu(ours: np.ndarray, expected: np.ndarray) -> None:
    assert ours.dtype == IMU_DTYPE
    assert len(ours) == len(expected)
    for name in ("t", "temperature", "accelerometer", "gyroscope", "magnetometer"):
        np.testing.assert_array_equal(ours[name], expected[name], err_msg=name)


def assert_same_frames(ours: tuple[Any, ...], expected: list[dict[str, Any]]) -> None:
    assert len(ours) == len(expected)
    for frame, wanted in zip(ours, expected, strict=True):
        assert (frame.t, frame.exposure_start, frame.exposure_end, frame.x, frame.y) == (
            wanted["t"],
            wanted["exposure_start"],
            wanted["exposure_end"],
            wanted["x"],
            wanted["y"],
        )
        assert frame.pixels.dtype == np.uint16
        np.testing.assert_array_equal(frame.pixels, wanted["pixels"])


# --------------------------------------------------------------------------- word streams


def random_imu_block(rng: np.random.Generator) -> list[int]:
    """An IMU block, usually well formed, sometimes with a byte too many or too few."""
    config = int(rng.integers(0, 256))
    count = 6 * bool(config & 0x80) + 2 * bool(config & 0x20) + 6 * bool(config & 0x40)
    count += int(rng.choice([0, 0, 0, 0, -1, 1]))
    data = [int(b) for b in rng.integers(0, 256, max(count, 0))]
    words = list(imu_words(config, data))
    if rng.random() < 0.1:
        words.insert(1, 0x5000 | int(rng.integers(0, 256)))  # a byte before the config
    if rng.random() < 0.05:
        words.insert(2, 0x5100 | int(rng.integers(0, 256)))  # an ignored sub-type
    return words


def random_dvxplorer_words(rng: np.random.Generator, count: int) -> list[int]:
    words: list[int] = []
    now = 0
    while len(words) < count:
        r = rng.random()
        if r < 0.15:
            now = max(0, now + int(rng.integers(-50, 3000)))
            words.append(0x8000 | (now & 0x7FFF))
        elif r < 0.2:
            words.append(0x7000 | int(rng.integers(0, 0x1000)))
        elif r < 0.3:
            words.append(0x1000 | int(rng.integers(0, 700)))
        elif r < 0.4:
            words.append(0x4000 | int(rng.integers(0, 0x1000)))
        elif r < 0.65:
            words.append(int(rng.choice([0x2000, 0x3000])) | int(rng.integers(0, 0x1000)))
        elif r < 0.75:
            words.append(int(rng.integers(0, 12)))  # special codes
        elif r < 0.85:
            words += random_imu_block(rng)
        elif r < 0.9:
            words.append(0x6000 | int(rng.integers(0, 0x1000)))
        else:
            words.append(0x5000 | int(rng.integers(0, 0x1000)))
    return words


def random_frame(rng: np.random.Generator, rows: int, columns: int) -> list[int]:
    """A frame readout with saturation, reset < signal, missing and extra reads."""
    words = [int(rng.choice([8, 9]))]

    def sample(reset: bool) -> int:
        kind = rng.random()
        if reset:
            value = int(rng.integers(0, 384)) if kind < 0.1 else int(rng.integers(384, 4096))
        else:
            value = 0 if kind < 0.05 else int(rng.integers(0, 4096))
        return 0x4000 | value

    for code, reset in ((11, True), (12, False)):
        if code == 12:
            words += [14, 0x8000 | int(rng.integers(0, 0x8000)), 15]
        for _ in range(columns + int(rng.choice([0, 0, 0, -1, 1]))):
            words.append(code)
            words += [sample(reset) for _ in range(rows + int(rng.choice([0, 0, 0, -1, 2])))]
            words.append(13)
            if rng.random() < 0.05:
                words += [0x1000 | 3, 0x3000 | 5]  # DVS events inside the readout
    if rng.random() < 0.9:
        words.append(10)
    return words


def random_davis_words(rng: np.random.Generator, count: int, rows: int, columns: int) -> list[int]:
    words: list[int] = []
    now = 0
    while len(words) < count:
        r = rng.random()
        if r < 0.15:
            now = max(0, now + int(rng.integers(-50, 3000)))
            words.append(0x8000 | (now & 0x7FFF))
        elif r < 0.2:
            words.append(0x7000)
        elif r < 0.32:
            words.append(0x1000 | int(rng.integers(0, 400)))
        elif r < 0.6:
            words.append(int(rng.choice([0x2000, 0x3000])) | int(rng.integers(0, 400)))
        elif r < 0.7:
            words.append(int(rng.integers(0, 18)))
        elif r < 0.8:
            words += random_imu_block(rng)
        elif r < 0.83:
            words += random_frame(rng, rows, columns)
        elif r < 0.9:
            words.append(0x4000 | int(rng.integers(0, 0x1000)))  # stray ADC samples
        else:
            words.append(0x6000 | int(rng.integers(0, 0x1000)))
    return words


def as_bytes(words: list[int]) -> bytes:
    return np.array(words, "<u2").tobytes()


# ------------------------------------------------------------------- decoders vs reference


@pytest.mark.parametrize("seed", range(6))
def test_dvxplorer_decoder_matches_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    data = as_bytes(random_dvxplorer_words(rng, 6000))
    if seed % 2:
        data += b"\x12"  # a trailing odd byte waits for more
    orientation = seed % 8
    expected = ref.decode_dvxplorer(data, imu_orientation=orientation)
    decoder = DvxplorerStreamDecoder(orientation)
    packet = decode_in_chunks(decoder, data, rng)
    assert len(packet.events) > 100
    assert len(packet.imu) > 5
    assert len(packet.triggers) > 5
    assert_same_events(packet.events, expected["events"])
    assert_same_triggers(packet.triggers, expected["triggers"])
    assert_same_imu(packet.imu, expected["imu"])
    assert decoder.current_t == expected["t"]


@pytest.mark.parametrize("seed", range(8))
def test_davis_decoder_matches_reference(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    aps_orientation = seed % 8
    window = (5, 7, 12, 9) if seed % 3 else (300, 250, 46, 10)
    swap = bool(aps_orientation & 4)
    rows, columns = (window[2], window[3]) if swap else (window[3], window[2])
    data = as_bytes(random_davis_words(rng, 8000, rows, columns))
    options = {
        "dvs_orientation": 4 if seed % 2 else 0,
        "aps_orientation": aps_orientation,
        "imu_orientation": (seed * 3) % 8,
        "imu_type": seed % 3,
    }
    expected = ref.decode_davis346(data, window=window, **options)
    decoder = Davis346StreamDecoder(aps_window=window, **options)
    packet = decode_in_chunks(decoder, data, rng)
    assert len(packet.frames) > 3
    assert len(packet.events) > 30
    assert_same_events(packet.events, expected["events"])
    assert_same_triggers(packet.triggers, expected["triggers"])
    assert_same_imu(packet.imu, expected["imu"])
    assert_same_frames(packet.frames, expected["frames"])
    assert decoder.current_t == expected["t"]


def test_davis_pixel_rules() -> None:
    """Saturation (reset < 384 or signal 0), reset < signal, clamping and missing reads."""
    resets = [1000, 300, 1000, 500, 3000, 1000]
    signals = [400, 100, 0, 600, 100]  # the last pixel gets no signal read
    words = [8, 11, *(0x4000 | v for v in resets), 13, 12, *(0x4000 | v for v in signals), 13]
    words.append(10)
    decoder = Davis346StreamDecoder(aps_window=(0, 0, 1, 6))
    frame = decoder.decode(np.frombuffer(as_bytes(words), np.uint8)).frames[0]
    expected = [600 << 6, 1023 << 6, 1023 << 6, 0, 1023 << 6, 0]
    np.testing.assert_array_equal(frame.pixels[:, 0], expected)
    assert frame.exposure_start is None
    assert frame.exposure_end is None


def test_timestamps_and_wraps() -> None:
    words = [0x8000 | 100, 0x1000 | 3, 0x4000 | 2, 0x3001, 0x8000 | 50, 0x3002, 0x7000]
    words += [0x3004, 0x8000 | 7, 0x3008, 0x7000, 0x7000, 0x3010]
    packet = DvxplorerStreamDecoder().decode(np.frombuffer(as_bytes(words), np.uint8))
    # 50 < 100 keeps the clock; a wrap moves it to its offset at least
    assert packet.events["t"].tolist() == [100, 100, 0x8000, 0x8007, 3 * 0x8000]
    assert packet.events["y"].tolist() == [16, 17, 18, 19, 20]


def test_triggers_pulse_is_rising_with_its_own_id() -> None:
    """Edges are id 0 rising/falling; a pulse is id 4 with rising=True (never a bool of 2)."""
    words = [0x8000 | 10, 3, 0x8000 | 20, 2, 0x8000 | 30, 4]
    for decoder in (DvxplorerStreamDecoder(), Davis346StreamDecoder()):
        triggers = decoder.decode(np.frombuffer(as_bytes(words), np.uint8)).triggers
        assert triggers.dtype == TRIGGERS_DTYPE
        assert triggers.tolist() == [(10, 0, True), (20, 0, False), (30, 4, True)]


def test_imu_units_and_axes() -> None:
    """DVXplorer: bytes 0..1 are y, 2..3 x; g and °/s; DAVIS: x first, its own scales."""
    raw = [1000, -2000, 16384, 512 * 7, 3000, -4000, 32767]  # ay/ax..., see per model
    data = [b for v in raw for b in ((v >> 8) & 0xFF, v & 0xFF)]
    dvx = imu_words(0xE0 | 1 << 3 | 2, data)  # 4 g, 500 °/s
    sample = DvxplorerStreamDecoder().decode(np.frombuffer(dvx.tobytes(), np.uint8)).imu[0]
    np.testing.assert_allclose(sample["accelerometer"], [-2000 * 4 / 32768, 1000 * 4 / 32768, 2])
    np.testing.assert_allclose(
        sample["gyroscope"], [3000 * 500 / 32768, -4000 * 500 / 32768, 32767 * 500 / 32768]
    )
    assert sample["temperature"] == pytest.approx(7 + 23)
    assert np.isnan(sample["magnetometer"]).all()
    davis = imu_words(0xE0 | 2 << 2 | 3, data)  # 8 g, 2000 °/s
    decoder = Davis346StreamDecoder(imu_type=1, imu_orientation=4)  # flip x
    sample = decoder.decode(np.frombuffer(davis.tobytes(), np.uint8)).imu[0]
    np.testing.assert_allclose(sample["accelerometer"], [-1000 * 8 / 32768, -2000 * 8 / 32768, 4])
    np.testing.assert_allclose(
        sample["gyroscope"], [-3000 * 2000 / 32768, -4000 * 2000 / 32768, 32767 * 2000 / 32768]
    )
    assert sample["temperature"] == pytest.approx(512 * 7 / 340 + 35)
    # No temperature: the gyroscope follows the accelerometer directly.
    partial = imu_words(0xC0, data[:6] + data[8:])
    sample = DvxplorerStreamDecoder().decode(np.frombuffer(partial.tobytes(), np.uint8)).imu[0]
    assert np.isnan(sample["temperature"])
    assert sample["gyroscope"][2] == pytest.approx(32767 * 2000 / 32768)


# -------------------------------------------------------------------------- round trips


def random_events(rng: np.random.Generator, count: int, width: int, height: int) -> np.ndarray:
    gaps = rng.choice([0, 0, 1, 3, 40, 70_000], count)  # ties, small steps, several wraps
    events = np.zeros(count, EVENTS_DTYPE)
    events["t"] = np.cumsum(gaps) + int(rng.integers(0, 100_000))
    events["x"] = rng.integers(0, width, count)
    events["y"] = rng.integers(0, height, count)
    events["on"] = rng.random(count) < 0.5
    events[5:10] = events[4]  # duplicates
    return events


@pytest.mark.parametrize("seed", range(4))
def test_dvxplorer_round_trip(seed: int) -> None:
    rng = np.random.default_rng(seed)
    events = random_events(rng, 20_000, 640, 480)
    triggers = [(int(t), np.array([code], np.uint16)) for t, code in ((0, 3), (70_000, 4))]
    words, _ = encode_words(events, triggers, davis=False, end=int(events["t"][-1]) + 5)
    data = words.tobytes()
    packet = decode_in_chunks(DvxplorerStreamDecoder(), data, rng)
    assert_same_events(sort_events(packet.events), sort_events(events))
    assert packet.triggers.tolist() == [(0, 0, True), (70_000, 4, True)]
    assert_same_events(ref.decode_dvxplorer(data)["events"], packet.events)


@pytest.mark.parametrize("invert", [False, True])
def test_davis_round_trip(invert: bool) -> None:
    rng = np.random.default_rng(7)
    events = random_events(rng, 20_000, 346, 260)
    words, checkpoints = encode_words(
        events, [], davis=True, end=int(events["t"][-1]), dvs_invert=invert
    )
    data = words.tobytes()
    decoder = Davis346StreamDecoder(dvs_orientation=4 if invert else 0)
    packet = decode_in_chunks(decoder, data, rng)
    assert_same_events(sort_events(packet.events), sort_events(events))
    assert checkpoints[-1] == decoder.current_t == events["t"][-1]
    assert np.all(np.diff(checkpoints) >= 0)


@pytest.mark.parametrize("orientation", range(8))
def test_frame_round_trip(orientation: int) -> None:
    rng = np.random.default_rng(orientation)
    window = (17, 3, 40, 25)
    image = rng.integers(0, 1024, (window[3], window[2]))
    image[0, :5] = 1023  # saturated
    inserts = frame_words(image, orientation, 8, 500, 120)
    words, _ = encode_words(np.zeros(0, EVENTS_DTYPE), inserts, davis=True, end=1000)
    decoder = Davis346StreamDecoder(aps_orientation=orientation, aps_window=window)
    frames = decode_in_chunks(decoder, words.tobytes(), rng).frames
    assert len(frames) == 1
    frame = frames[0]
    assert (frame.t, frame.exposure_start, frame.exposure_end) == (500, 500, 620)
    assert (frame.x, frame.y) == window[:2]
    np.testing.assert_array_equal(frame.pixels, image.astype(np.uint16) << 6)


# ---------------------------------------------------------------------------- biases


def test_dvxplorer_bias_registers_by_hand() -> None:
    # libcaer's presets, byte for byte (usb-sequences.md §5.6 LC4 and its note):
    # (0x0B, 0x0C, 0x12, AMP, ON, OFF)
    presets = {
        "default": (0x06, 0x14, 0x7D, 4, 0, 8),
        "very_low": (0x06, 0x14, 0x7D, 4, 6, 2),
        "low": (0x06, 0x14, 0x7D, 4, 3, 5),
        "high": (0x04, 0x14, 0x7F, 4, 5, 3),
        "very_high": (0x04, 0x14, 0x7F, 4, 2, 6),
    }
    addresses = [0x0B, 0x0C, 0x12, 0x18, 0x1C, 0x1E]
    for name, values in presets.items():
        assert PRESETS[name].registers() == list(zip(addresses, values, strict=True)), name
    assert DvxplorerBiases() == PRESETS["default"]
    # Every field moved: nRST bit 0, LOG bit 3, LOGD 2 → 0x08, LOGA off, sf 1 → 0x12 bit 4,
    # off ≥ 9 clears bit 1; amp 2 written as 2 (not max(amp, 8)), on/off − 9 above 8.
    biases = DvxplorerBiases(amp=2, on=3, off=12, sf=1, nrst=True, log=True, log_a=False, log_d=2)
    assert biases.registers() == list(zip(addresses, [0x09, 0x08, 0x7D, 2, 3, 3], strict=True))
    assert DvxplorerBiases(amp=8, on=17, off=0, sf=2).registers() == list(
        zip(addresses, [0x06, 0x14, 0x6F, 8, 8, 0], strict=True)
    )


def test_davis_coarse_fine_table_by_hand() -> None:
    # Index 0 is (0, 0); coarse 0 currents 11 × f stay below 94 (coarse 1, fine 1) up to f = 8.
    assert [coarse_fine(i) for i in range(10)] == [(0, 0), *((0, f) for f in range(1, 9)), (1, 1)]
    assert coarse_fine(2040) == (7, 255)
    assert coarse_fine(5000) == (7, 255)
    currents = [ini_current(*coarse_fine(i)) for i in range(2041)]
    assert all(a <= b for a, b in itertools.pairwise(currents))
    # The spec's defaults (usb-sequences.md §6.3).
    for index, pair in {
        1461: (5, 164),
        2000: (7, 215),
        1063: (4, 39),
        1564: (5, 255),
        583: (4, 1),
        1691: (6, 144),
        575: (2, 58),
        153: (1, 16),
        1: (0, 1),
        1563: (5, 254),
    }.items():
        assert coarse_fine(index) == pair, index
    assert bias_register(1564, 0b1111) == 0x5FFF  # OnBn: 0xF | 255 << 4 | 5 << 12
    assert bias_register(2000, 0b1110) == 0x7D7E  # PadFollBn, disabled
    assert bias_register(575, 0b1101) == 0x23AD  # PrBp, P-type
    assert bias_register(0, 0b1111) == 0x000F


def ini_current(coarse: int, fine: int) -> int:
    return (11, 94, 756, 6054, 48437, 387500, 3_100_000, 24_800_000)[coarse] * fine


def test_davis_default_bias_registers_match_spec() -> None:
    expected = [entry[1:] for entry in seq.DAVIS_DEFAULT_BIASES]
    assert Davis346Biases().registers() == expected


# ------------------------------------------------------------------------ configurations


@pytest.mark.parametrize(
    "make",
    [
        lambda: DvxplorerBiases(amp=9),
        lambda: DvxplorerBiases(on=18),
        lambda: DvxplorerBiases(off=-1),
        lambda: DvxplorerBiases(sf=4),
        lambda: DvxplorerBiases(log_d=3),
        lambda: DvxplorerBiases(nrst=1),
        lambda: DvxplorerBiases(amp=True),
        lambda: DvxplorerConfiguration(biases=Davis346Biases()),
        lambda: Davis346Biases(onbn=2041),
        lambda: Davis346Biases(offbn=-1),
        lambda: Davis346Biases(diffbn=1.5),
        lambda: RegionOfInterest(300, 0, 47, 260),
        lambda: RegionOfInterest(0, 0, 0, 10),
        lambda: RegionOfInterest(-1, 0, 10, 10),
        lambda: ActivityFilter(mask_isolated_time_us=100),
        lambda: ActivityFilter(refractory_period_time_us=-250),
        lambda: ActivityFilter(mask_isolated=1),
        lambda: Davis346Configuration(pixel_filter=tuple((i, 0) for i in range(9))),
        lambda: Davis346Configuration(pixel_filter=((346, 0),)),
        lambda: Davis346Configuration(exposure_us=0),
        lambda: Davis346Configuration(frame_interval_us=-5),
        lambda: Davis346Configuration(skip_events_every=1 << 32),
        lambda: Davis346Configuration(polarity_filter="flatten"),
        lambda: Davis346Configuration(pixel_filter=(3, 4)),
    ],
)
def test_invalid_configuration(make: Callable[[], Any]) -> None:
    with pytest.raises(ConfigurationError):
        make()


def test_configurations_in_files() -> None:
    from aerflow.devices import config_files

    davis = config_files.from_mapping(
        {
            "pixel_filter": [[1, 2]],
            "polarity_filter": "mask_on",
            "region_of_interest": {"left": 5, "width": 100},
            "activity_filter": {"mask_isolated_time_us": 500},
        },
        Davis346Configuration,
    )
    assert davis.pixel_filter == ((1, 2),)
    assert davis.polarity_filter is PolarityFilter.MASK_ON
    assert davis.region_of_interest == RegionOfInterest(5, 0, 100, 260)
    assert config_files.from_mapping(config_files.to_mapping(davis), Davis346Configuration) == davis
    dvx = config_files.from_mapping({"biases": {"on": 3}}, DvxplorerConfiguration)
    assert dvx.biases == DvxplorerBiases(on=3)
    with pytest.raises(ConfigurationError):
        config_files.from_mapping({"biases": {"amp": 12}}, DvxplorerConfiguration)


def test_wrong_configuration_type_is_refused() -> None:
    driver, _ = opened(EmulatedDavis346(tiny_recording()))
    with pytest.raises(ConfigurationError):
        driver.update_configuration(Davis346Configuration(), DvxplorerConfiguration())
    emulated = EmulatedDvxplorer(tiny_recording())
    backend = EmulatedBackend([emulated])
    handle = backend.open(backend.devices()[0])
    with pytest.raises(ConfigurationError):
        DvxplorerDriver(handle, "x").open(Davis346Configuration())
    assert not any(entry[0] == "SPI" for entry in emulated.log)


# ---------------------------------------------------------------------------- sequences


def test_dvxplorer_sequences_match_spec() -> None:
    """The DVXplorer's open (checks, stop, bring-up, FPGA configuration and start) and close
    sequences, request for request, against usb-sequences.md §5.

    The rows follow neuromorphic-drivers' order; where §5.7 recommends libcaer's choice the
    expected rows take it (DBGP/DBGN pins, default biases, ED = 2, SELX and event limits,
    activity-decision thresholds and area blocking, 0x3200 bit 2, the sensor timestamp
    reset, 50 ms after the multiplexer starts, pulse detection on and the generator off).
    These are interpretations ([I]), each behind a named constant of inivation_dvxplorer.py.
    """
    emulated = EmulatedDvxplorer(tiny_recording())
    driver, _ = opened(emulated)
    assert emulated.log == seq.DVXPLORER_OPEN
    emulated.log.clear()
    driver.close()
    assert emulated.log == seq.DVXPLORER_CLOSE


def test_davis_sequences_match_spec() -> None:
    """The DAVIS346's open and close against usb-sequences.md §6, request for request.

    Where §6.8 recommends libcaer's choice the expected rows take it ([I], each behind a
    named constant of inivation_davis346.py): the DVS ROI end is inclusive (left + width − 1),
    the gyroscope filter is always written, pulse detection and the detector are on, and the
    APS window multi-write is made independently of the DVS ROI filter, ending with APS run
    restored to its state (0 at open, before the APS starts).
    """
    emulated = EmulatedDavis346(tiny_recording())
    driver, _ = opened(emulated)
    assert emulated.log == seq.DAVIS_OPEN
    emulated.log.clear()
    driver.close()
    assert emulated.log == seq.DAVIS_CLOSE


def test_davis_open_with_settings() -> None:
    configuration = Davis346Configuration(
        region_of_interest=RegionOfInterest(10, 20, 100, 50),
        pixel_filter=((5, 6), (345, 259)),
    )
    emulated = EmulatedDavis346(tiny_recording())
    opened(emulated, configuration)
    spi = [entry for entry in emulated.log if entry[0] in ("SPI", "MULTI")]
    start = spi.index(seq.DAVIS_DEFAULT_BIASES[-1]) + 1
    expected = [
        *seq.davis_pixel_filter([(5, 6), (345, 259)]),
        *seq.DAVIS_DEFAULT_FPGA[16:20],  # G2
        *seq.davis_dvs_roi(10, 20, 100, 50),
        *seq.DAVIS_DEFAULT_FPGA[24:29],  # G4, G5
        seq.davis_aps_window(10, 20, 100, 50, 0),
        *seq.DAVIS_DEFAULT_FPGA[30:32],  # G7, G8
    ]
    assert spi[start : start + len(expected)] == expected


def test_davis_live_updates_write_only_changes() -> None:
    emulated = EmulatedDavis346(tiny_recording())
    driver, _ = opened(emulated)
    decoder = driver.decoder()
    base = Davis346Configuration()

    def update(**changes: Any) -> list[Any]:
        emulated.log.clear()
        driver.update_configuration(base, dataclasses.replace(base, **changes))
        return list(emulated.log)

    assert update() == []
    biases = dataclasses.replace(base.biases, onbn=1063, prbp=153)
    assert update(biases=biases) == [("SPI", 5, 11, 0x427F), ("SPI", 5, 14, 0x110D)]
    # The ROI: DVS filter with inclusive ends, then the APS window with APS run restored.
    roi = RegionOfInterest(10, 20, 100, 50)
    assert update(region_of_interest=roi) == [
        *seq.davis_dvs_roi(10, 20, 100, 50),
        seq.davis_aps_window(10, 20, 100, 50, 1),
    ]
    assert emulated.register(2, 4) == 1
    assert decoder.aps_window == (10, 20, 100, 50)  # type: ignore[attr-defined]
    assert update(exposure_us=1000) == [("SPI", 2, 12, 1000 * seq.ADC_MHZ)]
    assert update(frame_interval_us=20000) == [("SPI", 2, 13, 20000 * seq.ADC_MHZ)]
    assert update(pixel_filter=((1, 2),)) == seq.davis_pixel_filter([(1, 2)])
    assert update(activity_filter=ActivityFilter(False, 500, True, 1000)) == [
        ("SPI", 1, 31, 0),
        ("SPI", 1, 32, 2),
        ("SPI", 1, 33, 1),
        ("SPI", 1, 34, 4),
    ]
    assert update(skip_events_every=5) == [("SPI", 1, 51, 1), ("SPI", 1, 52, 5)]
    for mode, values in {
        PolarityFilter.FLATTEN: (1, 0, 0),
        PolarityFilter.MASK_ON: (0, 1, 1),
        PolarityFilter.MASK_OFF: (0, 1, 0),
        PolarityFilter.MASK_OFF_FLATTEN: (1, 1, 0),
    }.items():
        assert update(polarity_filter=mode) == [
            ("SPI", 1, 61 + i, value) for i, value in enumerate(values)
        ]
    # Invalid changes write nothing.
    emulated.log.clear()
    with pytest.raises(ConfigurationError):
        driver.update_configuration(base, dataclasses.replace(base, exposure_us=10**9))
    assert emulated.log == []


def test_davis_missing_filter() -> None:
    emulated = EmulatedDavis346(tiny_recording(), registers={(1, 10): 0, (1, 40): 0})
    driver, _ = opened(emulated)
    writes = [entry for entry in emulated.log if entry[0] == "SPI"]
    assert not any(entry[1:3] in ((1, 11), (1, 41)) for entry in writes)
    assert any(entry[0] == "MULTI" for entry in emulated.log)  # the APS window all the same
    with pytest.raises(ConfigurationError, match="pixel filter"):
        driver.update_configuration(
            Davis346Configuration(), Davis346Configuration(pixel_filter=((1, 1),))
        )
    with pytest.raises(ConfigurationError):
        opened(
            EmulatedDavis346(tiny_recording(), registers={(1, 60): 0}),
            Davis346Configuration(polarity_filter=PolarityFilter.FLATTEN),
        )


def test_dvxplorer_biases_apply_at_open_only() -> None:
    emulated = EmulatedDvxplorer(tiny_recording())
    driver, _ = opened(emulated)
    emulated.log.clear()
    base = DvxplorerConfiguration()
    driver.update_configuration(base, DvxplorerConfiguration())
    with pytest.raises(ConfigurationError, match="at open"):
        driver.update_configuration(base, DvxplorerConfiguration(PRESETS["high"]))
    assert emulated.log == []


def test_dvxplorer_open_writes_configured_biases() -> None:
    emulated = EmulatedDvxplorer(tiny_recording())
    opened(emulated, DvxplorerConfiguration(PRESETS["very_high"]))
    rows = seq.dvxplorer_bias_rows(0x04, 0x14, 0x7F, 4, 2, 6)
    start = emulated.log.index(rows[0])
    assert emulated.log[start : start + 6] == rows


# ------------------------------------------------------------------ checks and identity


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: EmulatedDvxplorer(tiny_recording(), bcd_device=0x0008), "firmware"),
        (lambda: EmulatedDvxplorer(tiny_recording(), registers={(6, 0): 17}), "logic version"),
        (lambda: EmulatedDvxplorer(tiny_recording(), registers={(6, 7): 3}), "logic patch"),
        (lambda: EmulatedDvxplorer(tiny_recording(), bcd_device=0x0409), "MIPI"),
        (lambda: EmulatedDvxplorer(tiny_recording(), registers={(1, 0): 320}), "320×480"),
        (lambda: EmulatedDavis346(tiny_recording(), bcd_device=0x0005), "firmware"),
        (lambda: EmulatedDavis346(tiny_recording(), registers={(6, 0): 19}), "logic version"),
        (lambda: EmulatedDavis346(tiny_recording(), registers={(6, 7): 0}), "logic patch"),
    ],
)
def test_version_checks(make: Callable[[], Any], match: str) -> None:
    emulated = make()
    with pytest.raises(DeviceProtocolError, match=match) as caught:
        opened(emulated)
    if match in ("firmware", "logic version", "logic patch"):
        assert "Flashy" in str(caught.value)
    assert not any(entry[0] in ("SPI", "MULTI") for entry in emulated.log)


def test_newer_logic_patch_is_accepted() -> None:
    opened(EmulatedDvxplorer(tiny_recording(), registers={(6, 7): 5}))
    opened(EmulatedDavis346(tiny_recording(), registers={(6, 7): 2}))


@pytest.mark.parametrize(
    ("serial", "expected"), [(None, "DXA00001"), ("DXA00093", "DXA00093"), ("", "00000000")]
)
def test_serial(serial: str | None, expected: str) -> None:
    emulated = EmulatedDvxplorer(tiny_recording(), serial=serial)
    backend = EmulatedBackend([emulated])
    handle = backend.open(backend.devices()[0])
    assert DvxplorerDriver.identify(handle) == expected
    assert Davis346Driver.identify(handle) == expected
    assert not any(entry[0] == "SPI" for entry in emulated.log)


def test_malformed_requests_stall() -> None:
    emulated = EmulatedDvxplorer(tiny_recording())
    backend = EmulatedBackend([emulated])
    handle = backend.open(backend.devices()[0])
    with pytest.raises(DeviceError):
        handle.control_write(CONTROL_OUT_VENDOR, 0xBF, 1, 3, b"\x00\x01", 1.0)
    with pytest.raises(DeviceError):
        handle.control_write(CONTROL_OUT_VENDOR, 0xC2, 1, 0, b"\x01\x03\x00\x00\x00\x01", 1.0)
    with pytest.raises(DeviceError):
        handle.control_write(CONTROL_OUT_VENDOR, 0xBF, 5, 0x3000, (256).to_bytes(4, "big"), 1.0)
    with pytest.raises(DeviceError):
        handle.control_read(CONTROL_IN_VENDOR, 0xBF, 6, 99, 4, 1.0)
    with pytest.raises(DeviceError):
        handle.control_read(CONTROL_IN_VENDOR, 0x99, 0, 0, 4, 1.0)
    with pytest.raises(DeviceError):
        handle.bulk_write(0x02, b"\x00", 1.0)
    davis = EmulatedDavis346(tiny_recording())
    backend = EmulatedBackend([davis])
    handle = backend.open(backend.devices()[0])
    with pytest.raises(DeviceError):  # 2 entries announced, 1 sent
        handle.control_write(CONTROL_OUT_VENDOR, 0xC2, 2, 0, b"\x02\x04\x00\x00\x00\x01", 1.0)
    handle.control_write(CONTROL_OUT_VENDOR, 0xC2, 1, 0, b"\x02\x04\x00\x00\x00\x01", 1.0)
    assert davis.log[-1] == ("MULTI", [(2, 4, 1)])


def test_counter_and_multi_write_requests() -> None:
    """64-bit counters are two reads (high half first); 0xC2 carries 6-byte entries."""
    davis = EmulatedDavis346(tiny_recording(), registers={(6, 10): 1, (6, 11): 0xFFFFFFFE})
    backend = EmulatedBackend([davis])
    handle = backend.open(backend.devices()[0])
    assert ini.spi_read_u64(handle, 6, 10) == 1 << 32 | 0xFFFFFFFE
    assert davis.log == [("SPI_READ", 6, 10), ("SPI_READ", 6, 11)]
    ini.spi_multi_write(handle, [(2, 8, 0x01020304), (1, 3, 1)])
    assert davis.log[-1] == ("MULTI", [(2, 8, 0x01020304), (1, 3, 1)])
    assert davis.register(2, 8) == 0x01020304


def test_close_is_best_effort_after_unplug() -> None:
    emulated = EmulatedDavis346(tiny_recording())
    driver, _ = opened(emulated)
    emulated.unplug()
    driver.close()  # no exception


# ----------------------------------------------------------------------------- emulation


def test_emulator_plays_only_while_started() -> None:
    emulated = EmulatedDvxplorer(tiny_recording())
    chunk = emulated.stream_chunk(1024)
    assert chunk is not None
    assert len(chunk.data) == 0
    driver, _handle = opened(emulated)
    chunk = emulated.stream_chunk(1024)
    assert chunk is not None
    assert len(chunk.data) == 1024
    driver.close()
    chunk = emulated.stream_chunk(1024)
    assert chunk is not None
    assert len(chunk.data) == 0


@pytest.mark.parametrize("model", ["dvxplorer", "davis346"])
def test_emulator_streams_its_recording(model: str) -> None:
    recording = tiny_recording(count=3000)
    emulated: Any = (EmulatedDvxplorer if model == "dvxplorer" else EmulatedDavis346)(
        recording, trigger_interval_us=20_000, imu_rate=500
    )
    driver, handle = opened(emulated)
    chunks = stream_all(handle)
    packet = decode_in_chunks(driver.decoder(), b"".join(chunks), np.random.default_rng(0))
    assert_same_events(sort_events(packet.events), sort_events(emulated.recording.events))
    # Triggers: only pulses are detected with the driver's configuration.
    assert packet.triggers.tolist() == [(t + 2000, 4, True) for t in range(20_000, 100_000, 20_000)]
    last = int(emulated.recording.events["t"].max())
    assert len(packet.imu) == len(range(0, last, 2000))
    np.testing.assert_allclose(packet.imu["accelerometer"][:, 1], -1.0)
    np.testing.assert_allclose(packet.imu["temperature"], 30.0, atol=0.01)
    if model == "davis346":
        # every 40 ms, exposed 4 ms, while the recording lasts
        assert [frame.t for frame in packet.frames] == [40_000, 80_000]
        assert packet.frames[0].pixels.shape == (260, 346)
        assert packet.frames[0].exposure_end == 44_000
    driver.close()


def test_emulator_frames_follow_window_and_orientation() -> None:
    recording = tiny_recording(count=3000)
    emulated = EmulatedDavis346(recording, registers={(2, 2): 7})
    configuration = Davis346Configuration(
        region_of_interest=RegionOfInterest(30, 10, 64, 32), frame_interval_us=20_000
    )
    driver, handle = opened(emulated, configuration)
    decoder = driver.decoder()
    packet = decode_in_chunks(decoder, b"".join(stream_all(handle)), np.random.default_rng(1))
    assert [frame.t for frame in packet.frames] == [20_000, 40_000, 60_000, 80_000]
    gradient = np.clip(np.linspace(100.0, 900.0, 346), 0, 1023).astype(np.int64)
    for frame in packet.frames:
        assert (frame.x, frame.y, frame.pixels.shape) == (30, 10, (32, 64))
        # Pixels without events show the gradient, whatever the APS orientation.
        values = frame.pixels.astype(np.int64) >> 6
        quiet = values[:, 0] == gradient[30]
        assert quiet.sum() > 10
        assert np.all(values[quiet, 0] == gradient[30])


def test_emulator_loop_keeps_time_running() -> None:
    emulated = EmulatedDvxplorer(tiny_recording(count=500), loop=True, imu_rate=0)
    driver, _handle = opened(emulated)
    cycle = 4 * 0x8000  # 100 ms recording rounded up to whole wraps
    size = None
    chunks: list[bytes] = []
    while size is None or sum(map(len, chunks)) < 2 * size + 10:
        chunk = emulated.stream_chunk(4096)
        assert chunk is not None
        chunks.append(bytes(chunk.data))
        size = emulated._stream.size if size is None else size
    events = driver.decoder().decode(np.frombuffer(b"".join(chunks), np.uint8)).events
    first = events[events["t"] < cycle]
    second = events[(events["t"] >= cycle) & (events["t"] < 2 * cycle)]
    assert len(first) == len(second) > 0
    np.testing.assert_array_equal(second["t"], first["t"] + cycle)
    assert np.all(np.diff(events["t"].astype(np.int64)) >= 0)


def test_emulator_chunks_carry_end_times() -> None:
    emulated = EmulatedDavis346(tiny_recording(count=2000))
    opened(emulated)
    ends = []
    while (chunk := emulated.stream_chunk(2048)) is not None:
        ends.append(chunk.t_end)
    assert all(isinstance(t, int) for t in ends)
    assert ends == sorted(ends)
    assert ends[-1] >= 100_000


def test_emulator_synthetic_default() -> None:
    emulated = EmulatedDvxplorer(duration="50ms", rate=100_000)
    assert len(emulated.recording.events) > 1000
    assert emulated.recording.events["x"].max() < 640
    with pytest.raises(TypeError):
        EmulatedDvxplorer(tiny_recording(), unknown_option=1)


@pytest.mark.skipif(DATA_DIR is None, reason="shared data not available")
@pytest.mark.parametrize("model", ["dvxplorer", "davis346"])
def test_emulator_with_shared_recording(model: str) -> None:
    path = Path(str(DATA_DIR)) / DVXPLORER_SAMPLE
    if not path.is_file():
        pytest.skip(f"{DVXPLORER_SAMPLE} not in the shared data")
    import aerflow

    original = aerflow.read(path, triggers=True)
    emulated: Any = (EmulatedDvxplorer if model == "dvxplorer" else EmulatedDavis346)(path)
    driver, handle = opened(emulated)
    packet = decode_in_chunks(
        driver.decoder(), b"".join(stream_all(handle)), np.random.default_rng(2)
    )
    expected = original.events.copy()
    zero = min(int(expected["t"][0]), int(original.imu["t"][0]))
    expected["t"] -= np.uint64(zero)
    assert_same_events(sort_events(packet.events), sort_events(expected))
    # The recording's IMU samples come back within the device's quantisation (±4 g, ±500 °/s).
    assert len(packet.imu) == len(original.imu)
    np.testing.assert_array_equal(packet.imu["t"], original.imu["t"] - np.uint64(zero))
    np.testing.assert_allclose(
        packet.imu["accelerometer"], original.imu["accelerometer"], atol=4 / 32768
    )
    np.testing.assert_allclose(packet.imu["gyroscope"], original.imu["gyroscope"], atol=500 / 32768)
    np.testing.assert_allclose(packet.imu["temperature"], original.imu["temperature"], atol=0.01)
    driver.close()


@pytest.mark.parametrize("model", ["dvxplorer", "davis346"])
def test_through_the_camera_api(model: str, tmp_path: Path) -> None:
    """End to end: aerflow.devices.open on aerflow.devices.emulate's bus, live updates."""
    import aerflow
    import aerflow.devices as devices

    recording = tiny_recording(count=3000)
    path = tmp_path / "recording.npy"
    aerflow.write(path, recording.events)
    backend = devices.emulate(model, path, trigger_interval_us=20_000)
    packets = []
    with devices.open(backend=backend, buffer_length=4096) as camera:
        assert camera.sensor_size == ((640, 480) if model == "dvxplorer" else (346, 260))
        for _, packet in camera:
            packets.append(packet)
            if len(packets) == 2 and model == "davis346":
                roi = RegionOfInterest(0, 0, 100, 100)
                camera.update_configuration(Davis346Configuration(region_of_interest=roi))
                assert camera.configuration.region_of_interest == roi
            elif len(packets) == 2:
                with pytest.raises(ConfigurationError):
                    camera.update_configuration(DvxplorerConfiguration(PRESETS["low"]))
    packet = concatenate_packets(packets)
    expected = recording.events.copy()
    expected["t"] -= expected["t"][0]  # device time starts at the recording's first event
    assert_same_events(sort_events(packet.events), sort_events(expected))
    assert [int(t) for t in packet.triggers["t"]] == [22_000, 42_000, 62_000, 82_000]
    assert len(packet.imu) > 50
    assert len(packet.frames) == (2 if model == "davis346" else 0)


@pytest.mark.parametrize(("model", "size"), [("davis346", (346, 260)), ("dvxplorer", (640, 480))])
def test_an_emulated_camera_says_what_it_leaves_out(
    model: str, size: tuple[int, int], tmp_path: Path
) -> None:
    """A recording larger than the emulated sensor: the events outside are counted in an
    OutOfRangeWarning, as file readers count theirs, never dropped in silence."""
    from aerflow.synthetic import SyntheticSensor

    events = SyntheticSensor(1280, 720, rate=100_000, duration="50ms", seed=2).read().events
    path = tmp_path / "big.raw"
    aerflow.write(path, events, width=1280, height=720)
    outside = int(((events["x"] >= size[0]) | (events["y"] >= size[1])).sum())
    assert 0 < outside < len(events)
    with pytest.warns(aerflow.OutOfRangeWarning, match=f"{outside} of {len(events)} events"):
        devices.emulate(model, path)
