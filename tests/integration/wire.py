"""qroam wire format for tests: a minimal protobuf codec and frames
(PROTOCOL section 5), independent of the C implementation.  The message
type numbers and status codes are read from proto/qroam.proto, so they are
the ones the daemons are built with."""

import os
import re
import struct

PROTO = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "proto", "qroam.proto")


def proto_enum(name, path=PROTO):
    """{symbol: number} of `enum name` in a .proto file, in file order."""
    with open(path) as f:
        text = re.sub(r"//[^\n]*", "", f.read())
    m = re.search(r"\benum\s+%s\s*\{([^}]*)\}" % re.escape(name), text)
    if m is None:
        raise ValueError("%s: no enum %s" % (path, name))
    return {k: int(v) for k, v in re.findall(r"(\w+)\s*=\s*(-?\d+)\s*;", m.group(1))}


# Message type numbers and status codes as proto/qroam.proto defines them.
MT = proto_enum("MsgType")
_CODES = proto_enum("StatusCode")
STATUS = [None] * (max(_CODES.values()) + 1)
for _name, _code in _CODES.items():
    STATUS[_code] = _name


def pb_varint(n):
    out = bytearray()
    n &= (1 << 64) - 1
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def pb_encode(fields):
    """Encode [(field_number, value), ...]: int = varint, bytes/str = length
    delimited, float = fixed64 double."""
    out = bytearray()
    for num, val in fields:
        if isinstance(val, bool):
            val = int(val)
        if isinstance(val, int):
            out += pb_varint(num << 3 | 0) + pb_varint(val)
        elif isinstance(val, float):
            out += pb_varint(num << 3 | 1) + struct.pack("<d", val)
        else:
            if isinstance(val, str):
                val = val.encode()
            out += pb_varint(num << 3 | 2) + pb_varint(len(val)) + val
    return bytes(out)


def pb_decode(buf):
    """Decode one message level into {field_number: [values]}."""
    out = {}
    i = 0

    def varint():
        nonlocal i
        shift = n = 0
        while True:
            if i >= len(buf):
                raise ValueError("truncated varint")
            b = buf[i]
            i += 1
            n |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return n

    while i < len(buf):
        key = varint()
        num, wt = key >> 3, key & 7
        if wt == 0:
            v = varint()
        elif wt == 1:
            v = buf[i:i + 8]
            i += 8
        elif wt == 2:
            ln = varint()
            v = buf[i:i + ln]
            if len(v) != ln:
                raise ValueError("truncated field")
            i += ln
        elif wt == 5:
            v = buf[i:i + 4]
            i += 4
        else:
            raise ValueError("bad wire type %d" % wt)
        out.setdefault(num, []).append(v)
    return out


def envelope(mtype, payload=None, request_id=None, version=1):
    fields = [(1, version), (2, mtype)]
    if payload is not None:
        fields.append((3, payload))
    if request_id is not None:
        fields.append((4, request_id))
    return pb_encode(fields)


def frame(mtype, payload=None, request_id=None, version=1):
    """A whole frame: 4-byte big-endian length, then the Envelope."""
    env = envelope(mtype, payload, request_id, version)
    return struct.pack(">I", len(env)) + env


def split_frames(data):
    """Split received bytes into ([(type, payload, request_id)], the bytes
    of a trailing partial frame)."""
    frames = []
    i = 0
    while i + 4 <= len(data):
        (n,) = struct.unpack(">I", data[i:i + 4])
        if i + 4 + n > len(data):
            break
        env = pb_decode(data[i + 4:i + 4 + n])
        frames.append((env.get(2, [None])[0], env.get(3, [b""])[0],
                       env.get(4, [None])[0]))
        i += 4 + n
    return frames, data[i:]


def parse_frames(data):
    """The whole frames of received bytes; a trailing partial frame is
    ignored."""
    return split_frames(data)[0]


def status_name(payload):
    """Name of the code in a Status or AuthResult payload."""
    code = pb_decode(payload).get(1, [None])[0]
    if code is None or code >= len(STATUS) or STATUS[code] is None:
        return "?%r" % (code,)
    return STATUS[code]
