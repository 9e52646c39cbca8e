"""Built-in file formats, registered on import (their kernels load on first use).

The reader and writer bases are public here: :class:`FileReader`, :class:`FileWriter`, and
:class:`ChunkedReader` with its :class:`ReaderCheckpoint`. They load on first use, so that
registering the formats (and starting the command line) stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._optional import load_lazy
from ..registry import FormatInfo, Option, register
from .prophesee_header import parse_header, raw_encoding
from .ros_detect import is_ros2_folder, sniff_ros1, sniff_ros2

if TYPE_CHECKING:
    from ._base import ChunkedReader, FileReader, FileWriter, ReaderCheckpoint

__all__ = ["ChunkedReader", "FileReader", "FileWriter", "ReaderCheckpoint"]

_BASES = dict.fromkeys(__all__, "aerflow.formats._base")
"""Public names of ``._base``, imported on first use."""


def __getattr__(name: str) -> Any:
    return load_lazy(globals(), _BASES, name)


def __dir__() -> list[str]:
    return sorted({*globals(), *_BASES})


_CHUNK = Option("chunk_size", int, "bytes decoded per step (memory per packet scales with it)")
_THREADS = Option("threads", int, "threads decoding in read() (default 2)")
_METADATA = Option(
    "metadata", dict, "header entries stored with the recording (Python only)", command_line=False
)
_SIZE = (
    Option("width", int, "sensor width, overriding the header"),
    Option("height", int, "sensor height, overriding the header"),
)
_RAW_WRITE = (
    Option("width", int, "sensor width (required unless given by the events' extent)"),
    Option("height", int, "sensor height"),
    Option("time_origin", int, "µs subtracted before writing and stored in the header"),
    _METADATA,
)


def _raw_sniffer(encoding: str):  # type: ignore[no-untyped-def]
    def sniff(head: bytes) -> bool:
        header = parse_header(head)
        found = raw_encoding(header.entries) if header.entries else None
        return found is not None and found[0] == encoding

    return sniff


def _sniff_dat(head: bytes) -> bool:
    header = parse_header(head)
    if not header.entries or raw_encoding(header.entries) is not None:
        return False
    return "Data" in header.entries or "Version" in header.entries


register(
    FormatInfo(
        name="evt3",
        description="Prophesee RAW, EVT 3.0 (16-bit vectorised words; Gen4.1, IMX636, EVK4)",
        extensions=(".raw",),
        sniff=_raw_sniffer("evt3"),
        reader="aerflow.formats.evt3:Evt3Reader",
        writer="aerflow.formats.evt3:Evt3Writer",
        read_options=(_CHUNK, *_SIZE, _THREADS),
        write_options=_RAW_WRITE,
        default_for_extension=True,
    )
)
register(
    FormatInfo(
        name="evt2",
        description="Prophesee RAW, EVT 2.0 (32-bit words; Gen3, Gen4 EVK2)",
        extensions=(".raw",),
        sniff=_raw_sniffer("evt2"),
        reader="aerflow.formats.evt2:Evt2Reader",
        writer="aerflow.formats.evt2:Evt2Writer",
        read_options=(_CHUNK, *_SIZE, _THREADS),
        write_options=_RAW_WRITE,
    )
)
register(
    FormatInfo(
        name="evt21",
        description="Prophesee RAW, EVT 2.1 (64-bit vectorised words, little or legacy order)",
        extensions=(".raw",),
        sniff=_raw_sniffer("evt21"),
        reader="aerflow.formats.evt21:Evt21Reader",
        writer="aerflow.formats.evt21:Evt21Writer",
        read_options=(
            _CHUNK,
            *_SIZE,
            Option("order", str, "word order, overriding the header", choices=("little", "legacy")),
        ),
        write_options=(
            Option("order", str, "word order", default="little", choices=("little", "legacy")),
            *_RAW_WRITE,
        ),
    )
)
register(
    FormatInfo(
        name="dat",
        description="Prophesee DAT (8-byte CD / Event2d or external-trigger records)",
        extensions=(".dat",),
        sniff=_sniff_dat,
        reader="aerflow.formats.dat:DatReader",
        writer="aerflow.formats.dat:DatWriter",
        read_options=(
            _CHUNK,
            *_SIZE,
            Option("layout", str, "record bit layout, overriding the header", choices=("v1", "v2")),
            _THREADS,
        ),
        write_options=(
            Option("width", int, "sensor width"),
            Option("height", int, "sensor height"),
            Option("time_origin", int, "µs subtracted before writing and stored in the header"),
            Option("kind", str, "records to write", default="cd", choices=("cd", "trigger")),
            _METADATA,
        ),
    )
)


def _sniff_event_stream(head: bytes) -> bool:
    return head.startswith(b"Event Stream")


def _sniff_nothing(head: bytes) -> bool:
    return False  # no header: chosen by name, or by extension when nothing else claims it


register(
    FormatInfo(
        name="es",
        description="Event Stream 2.x (DVS, ATIS, color; generic payloads via read_generic)",
        extensions=(".es",),
        sniff=_sniff_event_stream,
        reader="aerflow.formats.event_stream:EventStreamReader",
        writer="aerflow.formats.event_stream:EventStreamWriter",
        read_options=(
            _CHUNK,
            *_SIZE,
            Option(
                "atis_events",
                str,
                "ATIS streams: change detections, exposure measurements or both",
                default="change",
                choices=("change", "exposure", "all"),
            ),
        ),
        write_options=(
            Option("width", int, "sensor width"),
            Option("height", int, "sensor height"),
            Option("type", str, "stream type", default="dvs", choices=("dvs", "atis")),
            Option(
                "time_origin",
                int,
                "must be 0: Event Stream stores no time origin (shift times first instead)",
                default=0,
            ),
        ),
    )
)
register(
    FormatInfo(
        name="atis_bin",
        description="ATIS .bin of N-MNIST / N-Caltech101 (5-byte records; no header)",
        extensions=(".bin",),
        sniff=_sniff_nothing,
        reader="aerflow.formats.atis_bin:AtisBinReader",
        read_options=(
            _CHUNK,
            Option("width", int, "sensor width", default=34),
            Option("height", int, "sensor height", default=34),
        ),
    )
)


def _sniff_aedat(*versions: bytes):  # type: ignore[no-untyped-def]
    def sniff(head: bytes) -> bool:
        return any(head.startswith(b"#!AER-DAT" + v) for v in versions)

    return sniff


_AEDAT_CAMERAS = ("dvs128", "davis128", "davis208", "davis240", "davis346", "davis640", "davis")
_FLIP_Y = Option("flip_y", bool, "flip rows (y = height - 1 - y) to move the origin", default=False)
register(
    FormatInfo(
        name="aedat2",
        description="iniVation AEDAT 1.0 / 2.0 (jAER; big-endian records, DVS128 or DAVIS)",
        extensions=(".aedat",),
        sniff=_sniff_aedat(b"2.0\r\n", b"1.0\r\n", b"2.0\n", b"1.0\n"),
        reader="aerflow.formats.aedat2:Aedat2Reader",
        writer="aerflow.formats.aedat2:Aedat2Writer",
        read_options=(
            _CHUNK,
            Option("camera", str, "address layout, overriding the header", choices=_AEDAT_CAMERAS),
            *_SIZE,
            _FLIP_Y,
            Option("version", str, "record size, overriding the header", choices=("1.0", "2.0")),
        ),
        write_options=(
            Option(
                "camera", str, "address layout (default: from the size)", choices=_AEDAT_CAMERAS
            ),
            Option("width", int, "sensor width"),
            Option("height", int, "sensor height"),
            Option("time_origin", int, "µs subtracted before writing and stored in the header"),
            _FLIP_Y,
            _METADATA,
        ),
        default_for_extension=True,
    )
)
register(
    FormatInfo(
        name="aedat3",
        description="iniVation AEDAT 3.0 / 3.1 (cAER packets: polarity, triggers, IMU, frames)",
        extensions=(".aedat",),
        sniff=_sniff_aedat(b"3."),
        reader="aerflow.formats.aedat3:Aedat3Reader",
        writer="aerflow.formats.aedat3:Aedat3Writer",
        read_options=(
            _CHUNK,
            *_SIZE,
            _FLIP_Y,
            Option("source", int, "read only packets of this source ID (default: all)"),
        ),
        write_options=(
            Option("width", int, "sensor width"),
            Option("height", int, "sensor height"),
            Option("camera", str, "device name of the '#Source' line (default: from the size)"),
            Option("source", int, "source ID of every packet", default=1),
            _METADATA,
        ),
    )
)


def _sniff_aedat4(head: bytes) -> bool:
    return head.startswith(b"#!AER-DAT4.0")


register(
    FormatInfo(
        name="aedat4",
        description="iniVation AEDAT 4.0 (DV: compressed FlatBuffer packets; events, triggers, "
        "IMU, frames)",
        extensions=(".aedat4",),
        sniff=_sniff_aedat4,
        reader="aerflow.formats.aedat4:Aedat4Reader",
        writer="aerflow.formats.aedat4:Aedat4Writer",
        read_options=(
            Option("chunk_size", int, "file bytes gathered into each packet when iterating"),
            Option("threads", int, "threads decompressing and decoding (default 2)"),
            *_SIZE,
            Option("stream", int, "id of the event stream to read (default: the first)"),
        ),
        write_options=(
            Option("width", int, "sensor width (default: just large enough for the events)"),
            Option("height", int, "sensor height"),
            Option(
                "compression",
                str,
                "packet compression",
                default="lz4",
                choices=("lz4", "lz4_high", "zstd", "zstd_high", "none"),
            ),
            Option("level", int, "compression level, overriding the codec's default"),
            Option("packet_events", int, "events per packet", default=16384),
            Option("camera", str, "camera name stored in the description", default="aerflow"),
            Option("threads", int, "compression threads (default 2)"),
        ),
    )
)


def _sniff_csv(head: bytes) -> bool:
    from .text import sniff_text  # loads only when no earlier format claimed the file

    return sniff_text(head)


_COLUMNS_HELP = "column names in file order, e.g. 't,x,y,on' or 'x,y,p,t'"
register(
    FormatInfo(
        name="csv",
        description="CSV / text, one event per line (t,x,y,on with a header; OpenEB x,y,p,t "
        "with %geometry; 't[s] x y p' text)",
        extensions=(".csv", ".txt"),
        sniff=_sniff_csv,
        reader="aerflow.formats.text:TextReader",
        writer="aerflow.formats.text:TextWriter",
        read_options=(
            _CHUNK,
            Option("columns", str, _COLUMNS_HELP + " (default: from the header, else guessed)"),
            Option("separator", str, "',', ';', ' ' or '\\t' for blanks (default: guessed)"),
            Option(
                "time_unit", str, "unit of the times (default: guessed)", choices=("us", "ms", "s")
            ),
            *_SIZE,
        ),
        write_options=(
            Option(
                "layout",
                str,
                "preset: csv (t,x,y,on + header), openeb (%geometry, x,y,p,t),"
                " rpg (t x y p, seconds)",
                default="csv",
                choices=("csv", "openeb", "rpg"),
            ),
            Option("columns", str, _COLUMNS_HELP),
            Option("separator", str, "field separator"),
            Option(
                "time_unit",
                str,
                "unit of the times written (ms and s with 3 and 6 decimals)",
                choices=("us", "ms", "s"),
            ),
            Option("header", bool, "write a header line naming the columns"),
            Option("geometry", bool, "write a %geometry:W,H first line"),
            Option("width", int, "sensor width"),
            Option("height", int, "sensor height"),
        ),
    )
)
register(
    FormatInfo(
        name="npy",
        description="NumPy .npy array of events (any structured layout, or 2-D columns)",
        extensions=(".npy",),
        sniff=lambda head: head.startswith(b"\x93NUMPY"),
        reader="aerflow.formats.numpy_files:NpyReader",
        writer="aerflow.formats.numpy_files:NpyWriter",
        read_options=(
            Option("chunk_size", int, "file bytes per packet (the file is memory-mapped)"),
            Option("chunk_events", int, "events per packet, instead of --chunk-size"),
            Option("columns", str, "names of a 2-D array's columns", default="t,x,y,on"),
        ),
        write_options=(
            Option("width", int, "sensor width: accepted, not stored (a .npy has no place)"),
            Option("height", int, "sensor height: accepted, not stored"),
        ),
    )
)
register(
    FormatInfo(
        name="npz",
        description="NumPy .npz archive: 'events' (+ 'triggers') or separate t, x, y, p arrays",
        extensions=(".npz",),
        sniff=lambda head: False,  # a zip file: chosen by its extension, checked on opening
        reader="aerflow.formats.numpy_files:NpzReader",
        writer="aerflow.formats.numpy_files:NpzWriter",
        read_options=(
            Option("chunk_size", int, "bytes of decoded events (13 each) per packet"),
            Option("chunk_events", int, "events per packet, instead of --chunk-size"),
            Option("columns", str, "names of a 2-D events array's columns", default="t,x,y,on"),
        ),
        write_options=(
            Option("compress", bool, "deflate the arrays", default=False),
            Option("width", int, "sensor width (stored as sensor_size)"),
            Option("height", int, "sensor height"),
        ),
    )
)


_ROS_READ = (
    Option("topic", str, "event topic to read (default: the bag's only one)"),
    Option("chunk_size", int, "message bytes decoded per packet"),
)
_ROS_WRITE = (
    Option("width", int, "sensor width"),
    Option("height", int, "sensor height"),
    Option("topic", str, "topic to write", default="/events"),
    Option(
        "message_type",
        str,
        "message type",
        default="event_camera_msgs/EventPacket",
        choices=(
            "event_camera_msgs/EventPacket",
            "dvs_msgs/EventArray",
            "prophesee_event_msgs/EventArray",
        ),
    ),
    Option(
        "encoding",
        str,
        "EventPacket encoding",
        default="evt3",
        choices=("evt3", "mono", "trigger", "libcaer", "libcaer_cmp"),
    ),
    Option("message_duration", str, "event time each message covers", default="1ms"),
    Option("frame_id", str, "header frame_id", default=""),
    Option("time_origin", int, "µs subtracted before EVT 3.0 encoding (kept in time_base)"),
)
register(
    FormatInfo(
        name="rosbag",
        description="ROS 1 bag: event_camera_msgs/EventPacket (evt3, mono, trigger, libcaer, "
        "libcaer_cmp), dvs_msgs or prophesee_event_msgs EventArray (needs aerflow[ros])",
        extensions=(".bag",),
        sniff=sniff_ros1,
        reader="aerflow.formats.rosbag:Ros1BagReader",
        writer="aerflow.formats.rosbag:Ros1BagWriter",
        read_options=_ROS_READ,
        write_options=_ROS_WRITE,
    )
)
register(
    FormatInfo(
        name="rosbag2",
        description="ROS 2 bag (a folder with metadata.yaml, or its .mcap / .db3 file): the "
        "same messages as rosbag, CDR (needs aerflow[ros])",
        extensions=(".mcap", ".db3"),
        sniff=sniff_ros2,
        reader="aerflow.formats.rosbag:Ros2BagReader",
        writer="aerflow.formats.rosbag:Ros2BagWriter",
        read_options=_ROS_READ,
        write_options=_ROS_WRITE,
        sniff_folder=is_ros2_folder,
    )
)


def _sniff_hdf5(head: bytes) -> bool:
    # The signature sits at 0 or after a user block of 512 · 2**k bytes; whether the file is
    # a Prophesee one (a /CD/events dataset) the reader checks, refusing other HDF5 files.
    return any(head.startswith(b"\x89HDF\r\n\x1a\n", at) for at in (0, 512, 1024, 2048, 4096))


register(
    FormatInfo(
        name="hdf5",
        description="Prophesee HDF5 (Metavision 4+: ECF-compressed CD events, triggers; "
        "needs aerflow[hdf5])",
        extensions=(".hdf5", ".h5"),
        sniff=_sniff_hdf5,
        reader="aerflow.formats.hdf5:Hdf5Reader",
        writer="aerflow.formats.hdf5:Hdf5Writer",
        read_options=(
            Option("chunk_size", int, "stored bytes gathered into each packet when iterating"),
            Option("threads", int, "threads decoding in read() (default 2)"),
            *_SIZE,
        ),
        write_options=(
            Option("width", int, "sensor width, at most 2048 (default: from the events)"),
            Option("height", int, "sensor height, at most 2048"),
            _METADATA,
        ),
    )
)
