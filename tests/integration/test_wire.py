"""The tests' wire codec reads the message type numbers and status codes
from proto/qroam.proto: they must be the ones protoc-c generated for the
daemons (build/proto/qroam.pb-c.h).  Frames split as they were built."""

import os
import re

from harness import MT, ROOT, STATUS, frame, parse_frames
from wire import proto_enum, split_frames

HEADER = os.path.join(ROOT, "build", "proto", "qroam.pb-c.h")


def generated_enum(prefix):
    """{symbol: number} of one enum in the protoc-c header."""
    with open(HEADER) as f:
        text = f.read()
    return {k: int(v) for k, v in re.findall(r"\b%s(\w+) = (\d+)" % prefix, text)}


def test_enums_are_those_of_the_build():
    assert os.path.exists(HEADER), "%s is not generated (run `make`)" % HEADER
    assert MT == generated_enum("QROAM__MSG_TYPE__")
    codes = generated_enum("QROAM__STATUS_CODE__")
    assert {name: STATUS.index(name) for name in STATUS if name} == codes
    assert proto_enum("StatusCode") == codes
    # Type numbers are unique; OK is 0, as an absent code decodes.
    assert len(set(MT.values())) == len(MT)
    assert STATUS[0] == "OK"


def test_frames_round_trip():
    data = frame(MT["MT_M3"], b"abc", 9) + frame(MT["MT_STATUS"], None, 10)
    assert parse_frames(data) == [(MT["MT_M3"], b"abc", 9), (MT["MT_STATUS"], b"", 10)]
    frames, rest = split_frames(data[:-1])
    assert frames == [(MT["MT_M3"], b"abc", 9)] and rest == data[len(frame(MT["MT_M3"],
                                                                            b"abc", 9)):-1]
