"""Configuration files: TOML and JSON into frozen dataclasses, with errors naming the key."""

from __future__ import annotations

import enum
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from aerflow.devices.config_files import dump, from_mapping, load, to_mapping
from aerflow.errors import ConfigurationError


class Clock(enum.Enum):
    INTERNAL = 0
    INTERNAL_WITH_OUTPUT = 1
    EXTERNAL = 2


@dataclass(frozen=True)
class Biases:
    on: int = 10
    off: int = 20
    scale: float = 1.5


@dataclass(frozen=True)
class RateLimiter:
    period_us: int
    maximum_events: int


@dataclass(frozen=True)
class Configuration:
    biases: Biases = field(default_factory=lambda: Biases(on=11))
    x_mask: tuple[int, ...] = (0, 0, 0)
    window: tuple[int, int, int, int] = (0, 0, 64, 48)
    pixels: list[int] = field(default_factory=list)
    clock: Clock = Clock.INTERNAL
    rate_limiter: RateLimiter | None = None
    trigger: bool = True
    name: str = "camera"
    filter: Literal["off", "on", "strong"] = "off"

    def __post_init__(self) -> None:
        if self.biases.on < 0:
            raise ValueError("biases.on must not be negative")


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_toml_over_the_defaults(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "camera.toml",
        """
x_mask = [1, 2, 3, 4]
window = [1, 2, 30, 40]
pixels = [7]
clock = "external"
filter = "strong"

[biases]
off = 5

[rate_limiter]
period_us = 200
maximum_events = 1000
""",
    )
    configuration = load(path, Configuration)
    assert configuration == Configuration(
        biases=Biases(on=11, off=5),  # the default's value is kept, not the class's
        x_mask=(1, 2, 3, 4),
        window=(1, 2, 30, 40),
        pixels=[7],
        clock=Clock.EXTERNAL,
        rate_limiter=RateLimiter(200, 1000),
        filter="strong",
    )
    assert isinstance(configuration.x_mask, tuple)


def test_json_with_null_and_enum_names(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "camera.json",
        json.dumps({"clock": "Internal-With-Output", "rate_limiter": None, "biases": {"scale": 2}}),
    )
    configuration = load(path, Configuration)
    assert configuration.clock is Clock.INTERNAL_WITH_OUTPUT
    assert configuration.rate_limiter is None
    assert configuration.biases == Biases(on=11, scale=2.0)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("colour = 1", "colour: unknown setting of Configuration (known: biases,"),
        ("[biases]\nmiddle = 1", "biases.middle: unknown setting of Biases"),
        ("trigger = 1", "trigger: expected true or false, got 1"),
        ('[biases]\non = "10"', "biases.on: expected an integer, got '10'"),
        ("[biases]\non = 1.5", "biases.on: expected an integer"),
        ("[biases]\non = true", "biases.on: expected an integer, got True"),
        ('clock = "sometimes"', "clock: expected one of INTERNAL, INTERNAL_WITH_OUTPUT"),
        ("clock = 2", "clock: expected one of"),
        ('x_mask = [1, "a"]', "x_mask[1]: expected an integer"),
        ("x_mask = 3", "x_mask: expected an array"),
        ("window = [1, 2, 3]", "window: expected 4 values, got 3"),
        ("biases = 3", "biases: expected a table of Biases settings"),
        ("[rate_limiter]\nperiod_us = 100", "rate_limiter: "),
        ('filter = "medium"', "filter: expected one of 'off', 'on', 'strong'"),
        ("[biases]\non = -1", "biases.on must not be negative"),
        ("name = 3", "name: expected a string"),
    ],
)
def test_errors_name_the_file_and_the_key(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, "bad.toml", text)
    with pytest.raises(ConfigurationError) as error:
        load(path, Configuration)
    assert str(error.value).startswith(f"{path}: ")
    assert message in str(error.value)


def test_null_where_not_optional(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.json", '{"trigger": null}')
    with pytest.raises(ConfigurationError, match="trigger: this setting cannot be null"):
        load(path, Configuration)


@pytest.mark.parametrize(("name", "text"), [("bad.toml", "x_mask = [1,"), ("bad.json", "{")])
def test_syntax_errors_name_the_file(tmp_path: Path, name: str, text: str) -> None:
    path = write(tmp_path, name, text)
    with pytest.raises(ConfigurationError, match=f"{name}: not valid"):
        load(path, Configuration)


def test_the_top_level_must_be_a_table(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="top level"):
        load(write(tmp_path, "list.json", "[1, 2]"), Configuration)


def test_dump_reads_back(tmp_path: Path) -> None:
    configuration = Configuration(
        biases=Biases(on=1, off=2, scale=0.25),
        x_mask=(5, 6),
        pixels=[1, 2],
        clock=Clock.EXTERNAL,
        rate_limiter=RateLimiter(100, 2000),
        name='say "hi"',
    )
    text = dump(configuration, header="a header")
    assert text.startswith("# a header\n")
    assert "[rate_limiter]" in text
    assert load(write(tmp_path, "out.toml", text), Configuration) == configuration
    # None is written as a comment, and reads back as the default (here None as well).
    text = dump(Configuration())
    assert "# rate_limiter = (not set)" in text
    assert load(write(tmp_path, "default.toml", text), Configuration) == Configuration()


def test_to_mapping_is_json_ready() -> None:
    data = to_mapping(Configuration())
    assert data["clock"] == "internal"
    assert data["rate_limiter"] is None
    assert data["biases"] == {"on": 11, "off": 20, "scale": 1.5}
    assert from_mapping(json.loads(json.dumps(data)), Configuration) == Configuration()


def test_only_dataclasses() -> None:
    with pytest.raises(TypeError):
        from_mapping({}, dict)
    with pytest.raises(TypeError):
        to_mapping(Configuration)


@pytest.mark.skipif(sys.version_info < (3, 11), reason="tomllib comes with Python 3.11")
def test_toml_is_read_with_the_standard_library(tmp_path: Path) -> None:
    assert load(write(tmp_path, "empty.toml", ""), Configuration) == Configuration()
