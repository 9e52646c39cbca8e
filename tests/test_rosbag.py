"""ROS1 and ROS2 bags of event messages: the real bags, bags built independently with
``rosbags`` from the reference encoders in tests/reference/ros.py, aerflow's writer read back
by ``rosbags``, bad input, and the command line."""

from __future__ import annotations

import subprocess
import sys
import warnings
from collections.abc import Sequence
from contextlib import closing
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import aerflow
from aerflow.events import concatenate_packets
from aerflow.formats.evt3 import Evt3StreamDecoder
from aerflow.formats.rosbag import (
    LostMessagesWarning,
    MissingRosbagsError,
    Ros1BagReader,
    Ros2BagReader,
)

from .conftest import manifest_digest
from .helpers import assert_same_events, assert_same_triggers
from .reference import prophesee as prophesee_reference
from .reference import ros as ref

pytest.importorskip("rosbags", reason="rosbags not installed (pip install 'aerflow[ros]')")

from rosbags.rosbag1 import Reader as Ros1Reader
from rosbags.rosbag1 import Writer as Ros1Writer
from rosbags.rosbag2 import Reader as Ros2Reader
from rosbags.rosbag2 import StoragePlugin
from rosbags.rosbag2 import Writer as Ros2Writer

REAL = {1: "rosbag/ecpy_test_events_1.bag", 2: "rosbag2/ecpy_test_events_1.db3"}
FORMAT = {1: "rosbag", 2: "rosbag2"}
# ros-event-camera/event_camera_py tests/test_1.py: the sum of every event and trigger time
# (µs) of this recording, decoded by event_camera_codecs.
UPSTREAM_SUM_OF_TIMES = 2_885_601_049_874
STORES = {1: ref.typestore(1), 2: ref.typestore(2)}


# -- building bags with rosbags, independently of aerflow's writer ----------------------------


def _time(ros: int, t_ns: int) -> Any:
    return STORES[ros].types["builtin_interfaces/msg/Time"](
        t_ns // 1_000_000_000, t_ns % 1_000_000_000
    )


def _header(ros: int, seq: int, t_ns: int) -> Any:
    header = STORES[ros].types["std_msgs/msg/Header"]
    if ros == 1:
        return header(seq=seq, stamp=_time(ros, t_ns), frame_id="cam")
    return header(stamp=_time(ros, t_ns), frame_id="cam")


def packet_message(
    ros: int,
    payload: bytes,
    *,
    encoding: str,
    seq: int,
    time_base: int = 0,
    width: int = 64,
    height: int = 48,
    stamp_ns: int = 1_000_000_000,
) -> tuple[str, Any]:
    msgtype = "event_camera_msgs/msg/EventPacket"
    cls = STORES[ros].types[msgtype]
    message = cls(
        header=_header(ros, seq, stamp_ns),
        height=height,
        width=width,
        seq=seq,
        time_base=time_base,
        encoding=encoding,
        is_bigendian=False,
        events=np.frombuffer(payload, np.uint8),
    )
    return msgtype, message


def array_message(
    ros: int,
    package: str,
    events: Sequence[ref.Event],
    *,
    seq: int,
    width: int = 64,
    height: int = 48,
) -> tuple[str, Any]:
    types = STORES[ros].types
    event_class = types[f"{package}/msg/Event"]
    items = [
        event_class(x=x, y=y, ts=_time(ros, t * 1000), polarity=bool(on)) for t, x, y, on in events
    ]
    msgtype = f"{package}/msg/EventArray"
    message = types[msgtype](
        header=_header(ros, seq, events[0][0] * 1000 if events else 0),
        height=height,
        width=width,
        events=items,
    )
    return msgtype, message


def build_bag(
    folder: Path, ros: int, topics: dict[str, list[tuple[str, Any]]], storage: str = "sqlite3"
) -> Path:
    """A bag holding ``topics`` (name -> [(msgtype, message)]), serialised by rosbags."""
    store = STORES[ros]
    if ros == 1:
        path = folder / "built.bag"
        writer: Any = Ros1Writer(path)
        serialize = store.serialize_ros1
    else:
        path = folder / "built"
        plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
        writer = Ros2Writer(path, version=9, storage_plugin=plugin)
        serialize = store.serialize_cdr
    with writer:
        for topic, messages in topics.items():
            connection = writer.add_connection(topic, messages[0][0], typestore=store)
            for index, (msgtype, message) in enumerate(messages):
                writer.write(connection, 1_000_000_000 + index, serialize(message, msgtype))
    return path


def read(path: Path, **options: Any) -> aerflow.Packet:
    with aerflow.open(path, **options) as reader:
        packet: aerflow.Packet = reader.read()
    return packet


def bag_reader(path: Path, **options: Any) -> Ros1BagReader | Ros2BagReader:
    reader = aerflow.open(path, **options)
    assert isinstance(reader, Ros1BagReader | Ros2BagReader)
    return reader


def rosbags_messages(path: Path, ros: int) -> list[tuple[str, Any]]:
    """Every message of a bag deserialised by rosbags, in bag order."""
    store = STORES[ros]
    out = []
    reader_class: Any = Ros1Reader if ros == 1 else Ros2Reader
    with reader_class(path) as reader:
        for connection, _, raw in reader.messages():
            if ros == 1:
                message = store.deserialize_ros1(raw, connection.msgtype)
            else:
                message = store.deserialize_cdr(raw, connection.msgtype)
            out.append((connection.topic, message))
    return out


def random_events(
    rng: np.random.Generator, n: int, width: int, height: int, t0: int
) -> list[ref.Event]:
    t = t0 + np.cumsum(rng.integers(0, 40, n))
    return [
        (
            int(t[i]),
            int(rng.integers(0, width)),
            int(rng.integers(0, height)),
            bool(rng.integers(2)),
        )
        for i in range(n)
    ]


ROS = pytest.mark.parametrize("ros", [1, 2])


# -- message definitions ----------------------------------------------------------------------


def test_message_texts_hash_as_the_packages_do(shared_data: Path) -> None:
    """The .msg texts give the ROS1 md5 of rpg_dvs_ros and of the real bag's EventPacket."""
    store = STORES[1]
    assert store.generate_msgdef("dvs_msgs/msg/EventArray")[1] == ref.DVS_EVENT_ARRAY_MD5
    with Ros1Reader(shared_data / REAL[1]) as reader:
        digest = reader.connections[0].digest
    assert store.generate_msgdef("event_camera_msgs/msg/EventPacket")[1] == digest
    from aerflow.formats.ros_messages import message_definitions

    for ros in (1, 2):
        assert (
            message_definitions(ros == 2)["event_camera_msgs/msg/EventPacket"]
            == (ref.EVENT_PACKET_MSG[ros])
        )


# -- the real bags ------------------------------------------------------------------------------


@ROS
def test_real_bag_decodes_to_its_manifest_digest(
    ros: int, shared_data: Path, manifest: dict[str, Any]
) -> None:
    entry = manifest[REAL[ros]]
    with closing(bag_reader(shared_data / REAL[ros], chunk_size=100_000)) as reader:
        assert reader.format_name == FORMAT[ros]
        assert reader.properties.sensor_size == tuple(entry["sensor_size"])
        assert reader.metadata["encoding"] == "evt3"
        assert reader.time_reference == "sensor"
        packets = list(reader)
        assert len(packets) > 1  # bounded packets, not one whole-file array
        assert reader.lost_messages == 0
    packet = concatenate_packets(packets)
    events = packet.events
    assert len(events) == entry["events"]
    assert manifest_digest(events["t"], events["x"], events["y"], events["on"]) == entry["sha256"]
    assert int(events["t"][0]) == entry["t_first"]
    assert int(events["t"][-1]) == entry["t_last"]
    # The 4,157 EXT_TRIGGER words all follow a TIME_HIGH and a TIME_LOW (the first message
    # begins TIME_HIGH, TIME_LOW, EXT_TRIGGER), and event_camera_codecs decodes all of
    # them: upstream's sum of event and trigger times holds only with every one. (The
    # manifest's 4,156 drops the first, which no decoder here does.)
    triggers = packet.triggers
    assert len(triggers) == 4157
    total = int(events["t"].astype(np.int64).sum()) + int(triggers["t"].astype(np.int64).sum())
    assert total == UPSTREAM_SUM_OF_TIMES
    assert int(triggers["rising"].sum()) == 2079
    assert int((~triggers["rising"]).sum()) == 2078


@ROS
def test_real_bag_equals_the_reference_decoder_on_its_payloads(ros: int, shared_data: Path) -> None:
    """The payloads, taken out by rosbags' own deserialiser, as one EVT 3.0 stream."""
    payload = b"".join(bytes(m.events) for _, m in rosbags_messages(shared_data / REAL[ros], ros))
    events, triggers = prophesee_reference.decode_evt3(payload, 640, 480)
    packet = read(shared_data / REAL[ros])
    assert_same_events(packet.events, events)
    assert_same_triggers(packet.triggers, triggers)


@pytest.mark.parametrize(("batch_bytes", "underestimate"), [(1 << 12, True), (1 << 20, False)])
def test_read_fills_one_array_as_iteration_gives_packets(
    batch_bytes: int, underestimate: bool, shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """read() copies small batches into one array that it sizes, and grows, as it goes
    (here too, with the bag's size understated, again and again)."""
    import aerflow.formats._rosbag_reader as rosbag_module

    monkeypatch.setattr(rosbag_module, "_READ_BATCH_BYTES", batch_bytes)
    if underestimate:
        monkeypatch.setattr(rosbag_module, "_stored_bytes", lambda path: 1)
    with closing(bag_reader(shared_data / REAL[1], chunk_size=50_000)) as reader:
        whole = reader.read()
        packets = concatenate_packets(list(reader))
    assert_same_events(whole.events, packets.events)
    assert_same_triggers(whole.triggers, packets.triggers)
    assert len(whole.events) == 343_474


def test_real_bag_info_lists_topics(shared_data: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "aerflow", "info", str(shared_data / REAL[1])],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "event_camera_msgs/EventPacket, evt3, 517 messages, 640x480" in out
    assert "343,474" in out
    assert "7139845 µs" in out
    assert "9218023 µs" in out
    assert "sensor clock" in out


# -- bags built by rosbags from the reference encoders ----------------------------------------


@pytest.mark.parametrize(("ros", "storage"), [(1, "bag"), (2, "sqlite3"), (2, "mcap")])
def test_evt3_packets_form_one_stream(ros: int, storage: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    events = random_events(rng, 3000, 64, 48, 10)
    triggers = [(events[i][0], 3, i % 2 == 0) for i in range(0, 3000, 300)]
    words = np.frombuffer(ref.encode_evt3(events, triggers), np.uint16)
    # Cut anywhere between words: a message may end between a TIME_HIGH and its events.
    cuts = sorted(set(rng.integers(1, len(words), 20).tolist()))
    pieces = np.split(words, cuts)
    messages = [
        packet_message(ros, piece.tobytes(), encoding="evt3", seq=7 + i)
        for i, piece in enumerate(pieces)
    ]
    path = build_bag(tmp_path, ros, {"/cam/events": messages}, storage)
    packet = read(path)
    assert_same_events(packet.events, ref.as_events(events))
    assert_same_triggers(packet.triggers, ref.as_triggers(triggers))


ENCODED = {
    "mono": (ref.encode_mono, ref.decode_mono),
    "libcaer": (ref.encode_libcaer, ref.decode_libcaer),
}


@ROS
@pytest.mark.parametrize("encoding", ["mono", "libcaer"])
def test_word_encodings(ros: int, encoding: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    encoder, decoder = ENCODED[encoding]
    messages, expected, decoded = [], [], []
    t = 1_700_000_000_000_000 if encoding == "libcaer" else 5_000
    for seq in range(6):
        chunk = random_events(rng, 400, 64, 48, t)
        # Any ns base below the first event (libcaer stamps count whole µs after it).
        time_base = chunk[0][0] * 1000 - (seq * 7000 if encoding == "libcaer" else seq * 7)
        payload = encoder(chunk, time_base)
        decoded += decoder(payload, time_base)
        expected += chunk
        messages.append(
            packet_message(ros, payload, encoding=encoding, seq=seq, time_base=time_base)
        )
        t = chunk[-1][0]
    assert decoded == expected  # the reference pair agrees with itself
    with closing(bag_reader(build_bag(tmp_path, ros, {"/events": messages}))) as reader:
        assert reader.time_reference == ("ros" if encoding == "libcaer" else "sensor")
        packet = reader.read()
    assert_same_events(packet.events, ref.as_events(expected))


@ROS
def test_libcaer_stamps_that_loop_inside_a_message(ros: int, tmp_path: Path) -> None:
    time_base = 1_702_309_120_000_000_000
    stamps = [(1 << 31) - 30, (1 << 31) - 1, 5, 40]
    payload = b"".join(
        np.array([(i << 17) | (2 << 2) | 3, s], "<u4").tobytes() for i, s in enumerate(stamps)
    )
    expected = ref.decode_libcaer(payload, time_base)
    assert expected[2][0] - expected[1][0] == 6  # across the loop: 1 µs to wrap, then 5
    messages = [packet_message(ros, payload, encoding="libcaer", seq=0, time_base=time_base)]
    packet = read(build_bag(tmp_path, ros, {"/events": messages}))
    assert_same_events(packet.events, ref.as_events(expected))


@ROS
def test_trigger_encoding(ros: int, tmp_path: Path) -> None:
    triggers = [(100 + 10 * i, i % 5, i % 2 == 1) for i in range(50)]
    messages = [
        packet_message(
            ros,
            ref.encode_trigger(triggers[:20], 90_000),
            encoding="trigger",
            seq=0,
            time_base=90_000,
        ),
        packet_message(
            ros,
            ref.encode_trigger(triggers[20:], 300_000),
            encoding="trigger",
            seq=1,
            time_base=300_000,
        ),
    ]
    packet = read(build_bag(tmp_path, ros, {"/triggers": messages}))
    assert len(packet.events) == 0
    assert_same_triggers(packet.triggers, ref.as_triggers(triggers))


@ROS
def test_libcaer_cmp_state_carries_across_messages(ros: int, tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    base = 1_702_669_729_854_452_000
    messages, expected = [], []
    for seq in range(5):
        rows = random_events(rng, 500, 60, 40, base // 1000 + seq * 50_000)
        # The driver sends a packet sorted by time, then x, with rows in groups of 8.
        rows.sort(key=lambda e: (e[0], e[1], e[3], e[2]))
        payload = ref.encode_libcaer_cmp(rows, rows[0][0] * 1000)
        messages.append(
            packet_message(
                ros,
                payload,
                encoding="libcaer_cmp",
                seq=seq,
                time_base=rows[0][0] * 1000,
                width=60,
                height=40,
            )
        )
        expected += rows
    decoder = ref.LibcaerCmpDecoder(60, 40)
    decoded = []
    for _, message in messages:
        decoded += decoder.decode(bytes(message.events), message.time_base)
    assert sorted(decoded) == sorted(expected)
    packet = read(build_bag(tmp_path, ros, {"/events": messages}))
    assert_same_events(packet.events, ref.as_events(decoded))


@ROS
def test_random_libcaer_cmp_words_match_the_reference(ros: int, tmp_path: Path) -> None:
    """Any word sequence, including codes the format does not use and x left over from the
    previous message, decodes as the reference does."""
    rng = np.random.default_rng(4)
    decoder = ref.LibcaerCmpDecoder(50, 30)
    messages, expected = [], []
    for seq in range(4):
        codes = rng.integers(0, 8, 600)
        words = (codes << 12) | rng.integers(0, 1 << 12, 600)
        words[codes == 2] &= 0xF03F  # keep x mostly inside the sensor
        payload = words.astype("<u2").tobytes()
        time_base = 10_000_000 + seq * 3_000_000_123
        expected += decoder.decode(payload, time_base)
        messages.append(
            packet_message(
                ros,
                payload,
                encoding="libcaer_cmp",
                seq=seq,
                time_base=time_base,
                width=50,
                height=30,
            )
        )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with closing(bag_reader(build_bag(tmp_path, ros, {"/events": messages}))) as reader:
            packet = reader.read()
            dropped = reader.dropped_out_of_range
    assert_same_events(packet.events, ref.as_events(expected))
    assert dropped > 0
    assert any(issubclass(w.category, aerflow.OutOfRangeWarning) for w in caught)


@ROS
@pytest.mark.parametrize("package", ["dvs_msgs", "prophesee_event_msgs"])
def test_event_arrays(ros: int, package: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    expected: list[ref.Event] = []
    messages = []
    for seq, count in enumerate([1, 0, 2, 3, 257]):
        rows = random_events(rng, count, 64, 48, 1_675_956_550_318_916 + seq * 1000)
        expected += rows
        messages.append(array_message(ros, package, rows, seq=seq))
    path = build_bag(tmp_path, ros, {"/dvs/events": messages})
    # The reference decoder reads rosbags' serialisation the same way.
    serialize = STORES[ros].serialize_ros1 if ros == 1 else STORES[ros].serialize_cdr
    raw = bytes(serialize(messages[-1][1], messages[-1][0]))
    start = len(raw) - (13 * 257 if ros == 1 else 16 * 257 - 3)
    assert ref.decode_event_array(raw[start:], 257, ros == 2) == expected[-257:]
    with closing(bag_reader(path)) as reader:
        assert reader.metadata["message_type"] == f"{package}/EventArray"
        assert reader.time_reference == "ros"
        assert reader.properties.sensor_size == (64, 48)
        packet = reader.read()
    assert_same_events(packet.events, ref.as_events(expected))


# -- aerflow's writer, read back by rosbags and by aerflow ------------------------------------


def _sample(width: int = 64, height: int = 48) -> aerflow.Packet:
    rng = np.random.default_rng(6)
    events = ref.as_events(random_events(rng, 5000, width, height, 3_000_000))
    triggers = ref.as_triggers([(int(events["t"][i]), 1, i % 2 == 0) for i in range(0, 5000, 500)])
    return aerflow.Packet(events, triggers)


def _write(path: Path, packet: aerflow.Packet, **options: Any) -> None:
    with aerflow.open(path, "w", width=64, height=48, **options) as writer:
        half = len(packet.events) // 2
        cut = int(np.searchsorted(packet.triggers["t"], packet.events["t"][half]))
        writer.write(packet.events[:half], packet.triggers[:cut])
        writer.write(packet.events[half:], packet.triggers[cut:])


@pytest.mark.parametrize("name", ["out.bag", "out.mcap", "out.db3", "folder"])
def test_writer_evt3_packets_read_back_by_rosbags(name: str, tmp_path: Path) -> None:
    ros = 1 if name.endswith(".bag") else 2
    packet = _sample()
    path = tmp_path / name
    _write(path, packet, format=FORMAT[ros], topic="/cam/events", message_duration="2ms")
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # nothing left beside it
    messages = rosbags_messages(path, ros)
    assert {topic for topic, _ in messages} == {"/cam/events"}
    bodies = [m for _, m in messages]
    assert [m.seq for m in bodies] == list(range(len(bodies)))
    assert {m.encoding for m in bodies} == {"evt3"}
    assert {m.width for m in bodies} == {64}
    span = packet.events["t"][-1] - packet.events["t"][0]
    assert len(bodies) >= span // 2000
    stream = Evt3StreamDecoder(64, 48)
    for m in bodies:  # each message holds one 2 ms window, stamped with its first item
        part = stream.decode(np.frombuffer(bytes(m.events), np.uint8))
        times = np.concatenate([part.events["t"], part.triggers["t"]])
        stamp = m.header.stamp.sec * 1_000_000 + m.header.stamp.nanosec // 1000
        assert stamp == int(times.min())
        assert len(set((times // 2000).tolist())) == 1
        assert m.time_base == 0
    payload = b"".join(bytes(m.events) for m in bodies)
    events, triggers = prophesee_reference.decode_evt3(payload, 64, 48)
    assert_same_events(packet.events, events)
    assert_same_triggers(packet.triggers, triggers)
    back = read(path, format=FORMAT[ros])
    assert_same_events(back.events, packet.events)
    assert_same_triggers(back.triggers, packet.triggers)


def _dense_sample(rng: np.random.Generator, n: int, t0: int) -> np.ndarray:
    """Events that share times, columns and row groups: half sorted the way the libcaer
    driver sends them (vector groups), half in random order, duplicates included."""
    events = np.empty(n, aerflow.EVENTS_DTYPE)
    events["t"] = t0 + np.cumsum(rng.random(n) < 0.2)
    events["x"] = rng.integers(0, 3, n)
    events["y"] = rng.integers(0, 48, n)
    events["on"] = rng.random(n) < 0.5
    half = events[: n // 2]
    half[:] = half[np.lexsort((half["y"], half["on"], half["x"], half["t"]))]
    events["t"][-50:] += np.uint64(9_000)  # a gap: windows without messages
    events["x"][n // 2 :] = rng.integers(0, 64, n - n // 2)
    return events


REFERENCE_DECODERS = {
    "mono": ref.decode_mono,
    "libcaer": ref.decode_libcaer,
    "trigger": ref.decode_trigger,
}
REFERENCE_ENCODERS = {
    "mono": ref.encode_mono,
    "libcaer": ref.encode_libcaer,
    "trigger": ref.encode_trigger,
    "libcaer_cmp": ref.encode_libcaer_cmp_in_order,
}


@pytest.mark.parametrize("name", ["out.bag", "out.mcap"])
@pytest.mark.parametrize("encoding", ["mono", "trigger", "libcaer", "libcaer_cmp"])
def test_writer_encodings_read_back_by_rosbags_and_the_references(
    encoding: str, name: str, tmp_path: Path
) -> None:
    """aerflow's EventPacket payloads of every encoding, taken out by rosbags' deserialiser,
    decode exactly with the plain-Python references (which also re-encode them byte for
    byte), and aerflow reads the bag back exactly."""
    ros = 1 if name.endswith(".bag") else 2
    rng = np.random.default_rng(7)
    events = _dense_sample(rng, 6000, 1_700_000_000_123_456)  # a ROS (Unix) time
    triggers = ref.as_triggers(
        [(int(events["t"][i]), (37 * i) % 256, i % 3 == 0) for i in range(0, 6000, 150)]
    )
    path = tmp_path / name
    with aerflow.open(
        path, "w", width=64, height=48, encoding=encoding, message_duration="2ms"
    ) as writer:
        event_cuts = [0, 2000, 4000, len(events)]
        trigger_cuts = [0, *np.searchsorted(triggers["t"], events["t"][[2000, 4000]]), None]
        for k in range(3):
            chunk = events[event_cuts[k] : event_cuts[k + 1]]
            edges = triggers[trigger_cuts[k] : trigger_cuts[k + 1]]
            writer.write(chunk[:0] if encoding == "trigger" else chunk, edges)
    assert writer.unwritten == ({} if encoding == "trigger" else {"triggers": len(triggers)})
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]
    bodies = [m for _, m in rosbags_messages(path, ros)]
    assert [m.seq for m in bodies] == list(range(len(bodies)))
    assert {m.encoding for m in bodies} == {encoding}
    assert {(m.width, m.height) for m in bodies} == {(64, 48)}
    cmp_decoder = ref.LibcaerCmpDecoder(64, 48)
    rows: list[Any] = []
    for m in bodies:
        payload = bytes(m.events)
        if encoding == "libcaer_cmp":
            part = cmp_decoder.decode(payload, m.time_base)
        else:
            part = REFERENCE_DECODERS[encoding](payload, m.time_base)
        stamp = m.header.stamp.sec * 1_000_000 + m.header.stamp.nanosec // 1000
        assert stamp == part[0][0]  # stamped with its first item
        assert m.time_base == stamp * 1000
        assert len({(row[0] - 1_700_000_000_000_000) // 2000 for row in part}) == 1
        assert REFERENCE_ENCODERS[encoding](part, m.time_base) == payload
        rows += part
    if encoding == "trigger":
        assert_same_triggers(ref.as_triggers(rows), triggers)
    else:
        assert_same_events(ref.as_events(rows), events)
    with closing(bag_reader(path)) as reader:
        assert reader.metadata["encoding"] == encoding
        back = reader.read()
    if encoding == "trigger":
        assert len(back.events) == 0
        assert_same_triggers(back.triggers, triggers)
    else:
        assert_same_events(back.events, events)
        assert len(back.triggers) == 0


def test_writer_libcaer_cmp_groups_rows_into_vectors(tmp_path: Path) -> None:
    """Hand-made words: a vector of three rows, a single row, a lower row that may not join
    the group (it would come back reordered), a duplicate, then a later time."""
    events = ref.as_events(
        [
            (5000, 3, 9, True),
            (5000, 3, 10, True),
            (5000, 3, 15, True),
            (5000, 3, 17, False),
            (5000, 3, 16, False),
            (5000, 3, 16, False),
            (5000 + 4097, 7, 0, True),
        ]
    )
    path = tmp_path / "cmp.bag"
    aerflow.write(
        path, events, width=64, height=48, encoding="libcaer_cmp", message_duration="10ms"
    )
    (body,) = [m for _, m in rosbags_messages(path, 1)]
    words = np.frombuffer(bytes(body.events), "<u2").tolist()
    assert words == [
        0x2003,  # ADDR_X 3
        0x4808,  # VECT_BASE_Y 8, ON
        0x5000 | 0b10000110,  # VECT_8: rows 9, 10, 15
        0x3011,  # ADDR_Y 17, OFF
        0x3010,  # ADDR_Y 16, OFF
        0x3010,  # ADDR_Y 16, OFF again
        0x0001,  # TIME_HIGH 1 (4096 µs)
        0x1001,  # TIME_LOW 1
        0x2007,  # ADDR_X 7
        0x3800,  # ADDR_Y 0, ON
    ]
    assert body.time_base == 5000 * 1000
    assert_same_events(read(path).events, events)


def test_writer_trigger_encoding_refuses_events(tmp_path: Path) -> None:
    path = tmp_path / "t.bag"
    writer = aerflow.open(path, "w", width=64, height=48, encoding="trigger")
    with pytest.raises(ValueError, match="trigger encoding holds trigger edges only"), writer:
        writer.write(ref.as_events([(10, 1, 1, True)]), ref.as_triggers([(10, 2, True)]))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"encoding": "mono", "message_duration": "3s"}, r"at most 2147483 µs"),
        ({"encoding": "libcaer_cmp", "message_duration": "17s"}, r"at most 16777216 µs"),
        ({"encoding": "libcaer_cmp", "width": 4096}, r"at most 2048x2048"),
        ({"encoding": "libcaer", "height": 40_000}, r"at most 32768x32768"),
        ({"encoding": "evt4"}, r"encoding must be one of evt3, mono"),
        (
            {"encoding": "mono", "message_type": "dvs_msgs/EventArray"},
            r"encoding= is for event_camera_msgs/EventPacket",
        ),
    ],
)
def test_writer_refuses_what_an_encoding_cannot_hold(
    options: dict[str, Any], message: str, tmp_path: Path
) -> None:
    settings = {"width": 64, "height": 48, **options}
    with pytest.raises(ValueError, match=message):
        aerflow.open(tmp_path / "x.bag", "w", **settings)
    assert list(tmp_path.iterdir()) == []


@ROS
@pytest.mark.parametrize("package", ["dvs_msgs", "prophesee_event_msgs"])
def test_writer_event_arrays_read_back_by_rosbags(ros: int, package: str, tmp_path: Path) -> None:
    packet = _sample()
    events = packet.events.copy()
    events["t"] += np.uint64(1_675_956_550_000_000)  # ROS time
    path = tmp_path / ("a.bag" if ros == 1 else "a.mcap")
    _write(path, aerflow.Packet(events, packet.triggers), message_type=f"{package}/EventArray")
    rows = []
    for _, message in rosbags_messages(path, ros):
        rows += [
            (e.ts.sec * 1_000_000 + e.ts.nanosec // 1000, e.x, e.y, e.polarity)
            for e in message.events
        ]
        assert message.width == 64
        assert message.height == 48
    assert_same_events(ref.as_events(rows), events)
    assert_same_events(read(path).events, events)


def test_writer_keeps_absolute_times_in_time_base(tmp_path: Path) -> None:
    packet = _sample()
    events = packet.events.copy()
    events["t"] += np.uint64(1_600_000_000_123_456)
    path = tmp_path / "abs.bag"
    _write(path, aerflow.Packet(events, packet.triggers[:0]))
    bodies = [m for _, m in rosbags_messages(path, 1)]
    assert {m.time_base for m in bodies} == {1_600_000_003_000_000 * 1000}
    with closing(bag_reader(path)) as reader:
        assert reader.properties.t0 == 1_600_000_003_000_000
        assert_same_events(reader.read().events, events)


def test_writer_refuses_events_outside_the_sensor(tmp_path: Path) -> None:
    events = ref.as_events([(1, 64, 0, True)])
    with pytest.raises(ValueError, match="outside the 64x48 sensor"):
        aerflow.write(tmp_path / "x.bag", events, width=64, height=48)
    assert list(tmp_path.iterdir()) == []


def test_writer_replaces_a_bag_folder_only(tmp_path: Path) -> None:
    folder = tmp_path / "bag"
    packet = _sample()
    _write(folder, packet, format="rosbag2")
    _write(folder, aerflow.Packet(packet.events[:10], packet.triggers[:0]), format="rosbag2")
    assert len(read(folder).events) == 10
    other = tmp_path / "photos"
    other.mkdir()
    (other / "a.jpg").write_bytes(b"x")
    with pytest.raises(aerflow.OutputError, match="not a ROS 2 bag"):
        _write(other, packet, format="rosbag2")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bag", "photos"]


# -- bad input --------------------------------------------------------------------------------


@ROS
def test_bag_without_event_topic(ros: int, tmp_path: Path) -> None:
    string = STORES[ros].types["std_msgs/msg/String"]
    path = build_bag(tmp_path, ros, {"/chatter": [("std_msgs/msg/String", string(data="hi"))]})
    with pytest.raises(aerflow.FormatError, match=r"no event topic.*/chatter"):
        aerflow.open(path)


@ROS
def test_several_event_topics_need_a_choice(ros: int, tmp_path: Path) -> None:
    rows = [(10, 1, 2, True)]
    path = build_bag(
        tmp_path,
        ros,
        {
            "/left": [array_message(ros, "dvs_msgs", rows, seq=0)],
            "/right": [packet_message(ros, ref.encode_mono(rows, 0), encoding="mono", seq=0)],
        },
    )
    with pytest.raises(aerflow.FormatError, match=r"several event topics.*/left.*/right"):
        aerflow.open(path)
    with pytest.raises(aerflow.FormatError, match="'/middle' is not a topic"):
        aerflow.open(path, topic="/middle")
    assert_same_events(read(path, topic="/right").events, ref.as_events(rows))


@ROS
def test_unknown_encoding_names_topic_and_message(ros: int, tmp_path: Path) -> None:
    messages = [
        packet_message(ros, ref.encode_mono([(1, 1, 1, True)], 0), encoding="mono", seq=0),
        packet_message(ros, b"\x00" * 8, encoding="evt4", seq=1),
    ]
    path = build_bag(tmp_path, ros, {"/events": messages})
    with pytest.raises(
        aerflow.FormatError, match=r"topic /events, message 1: unknown encoding 'evt4'"
    ):
        read(path)


@ROS
@pytest.mark.parametrize(("encoding", "size"), [("mono", 12), ("evt3", 5), ("libcaer_cmp", 3)])
def test_payload_ending_inside_a_word(ros: int, encoding: str, size: int, tmp_path: Path) -> None:
    messages = [packet_message(ros, b"\x00" * 8, encoding=encoding, seq=i) for i in range(3)]
    messages.append(packet_message(ros, b"\x00" * size, encoding=encoding, seq=3))
    path = build_bag(tmp_path, ros, {"/events": messages})
    with pytest.raises(aerflow.FormatError, match=r"message 3: the .* payload of .* ends inside"):
        read(path)


@ROS
def test_event_array_declaring_more_events_than_it_holds(ros: int, tmp_path: Path) -> None:
    _, message = array_message(ros, "dvs_msgs", [(5, 1, 1, True)] * 3, seq=0)
    serialize = STORES[ros].serialize_ros1 if ros == 1 else STORES[ros].serialize_cdr
    raw = bytes(serialize(message, "dvs_msgs/msg/EventArray"))[:-5]
    path = tmp_path / ("cut.bag" if ros == 1 else "cut")
    writer: Any = Ros1Writer(path) if ros == 1 else Ros2Writer(path, version=9)
    with writer:
        connection = writer.add_connection("/dvs", "dvs_msgs/msg/EventArray", typestore=STORES[ros])
        writer.write(connection, 1, raw)
    with pytest.raises(aerflow.FormatError, match=r"topic /dvs, message 0: .*declares 3 events"):
        read(path)


@ROS
def test_seq_gaps_are_lost_messages(ros: int, tmp_path: Path) -> None:
    rows = [(10 * i, i, i, True) for i in range(4)]
    messages = [
        packet_message(ros, ref.encode_mono([row], 0), encoding="mono", seq=seq)
        for row, seq in zip(rows, [3, 4, 8, 9], strict=False)
    ]
    with closing(bag_reader(build_bag(tmp_path, ros, {"/events": messages}))) as reader:
        with pytest.warns(LostMessagesWarning, match="lost 3 messages"):
            packet = reader.read()
        assert reader.lost_messages == 3
    assert_same_events(packet.events, ref.as_events(rows))


def test_truncated_bag(tmp_path: Path, shared_data: Path) -> None:
    data = (shared_data / REAL[1]).read_bytes()
    for keep in (len(data) // 2, len(data) - 100, 4096, 20):
        path = tmp_path / "cut.bag"
        path.write_bytes(data[:keep])
        with pytest.raises(aerflow.FormatError, match=r"cut\.bag"):
            read(path)


def test_not_a_bag(tmp_path: Path) -> None:
    path = tmp_path / "x.bag"
    path.write_bytes(b"hello world\n")
    with pytest.raises(aerflow.FormatError):
        aerflow.open(path, format="rosbag")
    folder = tmp_path / "plain"
    folder.mkdir()
    with pytest.raises(aerflow.UnknownFormatError, match="folder"):
        aerflow.open(folder)


def test_missing_rosbags_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, shared_data: Path
) -> None:
    monkeypatch.setitem(sys.modules, "rosbags.rosbag1", None)
    with pytest.raises(MissingRosbagsError, match=r"pip install 'aerflow\[ros\]'"):
        aerflow.open(shared_data / REAL[1])


def test_import_aerflow_loads_no_rosbags() -> None:
    code = "import sys, aerflow; aerflow.list_formats(); print('rosbags' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.stdout.strip() == "False", result.stderr


# -- the command line: a real recording into a bag and back ----------------------------------


def _cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aerflow", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize(
    ("recording", "bag", "back"),
    [
        ("evt3/expelliarmus_evt3_gen41_2020-09-14.raw", "run.bag", "back.raw"),
        ("aedat4/tonic_sample_dvxplorer.aedat4", "run_bag", "back.aedat4"),
        ("evt3/expelliarmus_evt3_gen41_2020-09-14.raw", "run.mcap", "back.csv"),
    ],
)
def test_recording_to_bag_and_back_through_the_cli(
    recording: str, bag: str, back: str, tmp_path: Path, shared_data: Path
) -> None:
    source = shared_data / recording
    bag_path, back_path = tmp_path / bag, tmp_path / back
    out: list[str | Path] = ["output", "file", bag_path]
    if "." not in bag:
        out += ["--format", "rosbag2"]
    result = _cli("input", "file", source, *out)
    assert result.returncode == 0, result.stderr
    result = _cli("input", "file", bag_path, "--topic", "/events", "output", "file", back_path)
    assert result.returncode == 0, result.stderr
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        original = read(source)
    assert_same_events(read(back_path).events, original.events)
    info = _cli("info", bag_path)
    assert info.returncode == 0, info.stderr
    assert "/events: event_camera_msgs/EventPacket, evt3" in info.stdout
