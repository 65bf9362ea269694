"""Frame decoding that survives whatever a partner's client puts on the wire.

pamqp (under aio-pika) decodes every short string of a frame (message_id, type,
correlation_id, the routing key, header names) as strict UTF-8, and every timestamp
as a `datetime`. RabbitMQ checks neither. A message whose message_id is Latin-1
("bericht-\xe9"), or whose timestamp is in microseconds, therefore fails to decode
*inside the connection's frame reader*: the whole connection drops, every message in
flight on it is redelivered, and the bad message comes back to kill the next
connection too. One partner could stall the front door for everyone that way.

:func:`install` makes the decoding tolerant, process-wide and idempotently:

* short strings and table keys that are not UTF-8 decode with ``surrogateescape``,
  and are encoded back the same way, so the original bytes survive a re-publish
  (``vi.rejected`` and parked messages stay whole). Such a string contains lone
  surrogates, so it is not :meth:`str.isprintable` and ingest refuses it as a
  message_id; as a routing key it is simply an unknown type;
* a timestamp outside what `datetime` can hold decodes as ``None`` (absent).

Valid frames decode exactly as before.
"""

from __future__ import annotations

import datetime
import struct
from typing import Any, Final

from pamqp import common, decode, encode

_ERRORS: Final = "surrogateescape"
_installed = False


def _short_str(value: bytes) -> tuple[int, str]:
    try:
        length = common.Struct.byte.unpack(value[0:1])[0]
    except (struct.error, TypeError) as err:
        raise ValueError("Could not unpack short string value") from err
    return length + 1, value[1 : length + 1].decode("utf-8", _ERRORS)


def _timestamp(value: bytes) -> tuple[int, datetime.datetime | None]:
    try:
        raw: float = common.Struct.timestamp.unpack(value[0:8])[0]
    except (struct.error, TypeError) as err:
        raise ValueError("Could not unpack timestamp value") from err
    if raw > 0xFFFFFFFF:  # pamqp's rule: past 2106 it is probably milliseconds
        raw /= 1000.0
    try:
        return 8, datetime.datetime.fromtimestamp(raw, tz=datetime.UTC)
    except (ValueError, OverflowError, OSError):
        return 8, None


def _field_table(value: bytes) -> tuple[int, dict[str, Any]]:
    # pamqp.decode.field_table with tolerant keys.
    try:
        length = common.Struct.integer.unpack(value[0:4])[0]
        offset = 4
        data: dict[str, Any] = {}
        end = offset + length
        if end > len(value):
            raise ValueError("Field table length exceeds available data")
        while offset < end:
            key_length = common.Struct.byte.unpack_from(value, offset)[0]
            offset += 1
            if offset + key_length > end:
                raise ValueError("Field table key length exceeds data")
            key = value[offset : offset + key_length].decode("utf-8", _ERRORS)
            offset += key_length
            consumed, result = decode.embedded_value(value[offset:])
            offset += consumed
            data[key] = result
        return end, data
    except (struct.error, TypeError) as err:
        raise ValueError("Could not unpack data") from err


def _string(encoder: struct.Struct, value: str) -> bytes:
    # pamqp.encode._string, giving back the bytes that _short_str escaped.
    if not isinstance(value, str):
        raise TypeError(f"str required, received {type(value)}")
    raw = value.encode("utf-8", _ERRORS)
    max_length = 255 if encoder is common.Struct.byte else 4294967295
    if len(raw) > max_length:
        raise TypeError(f"string exceeds maximum length of {max_length} bytes")
    return encoder.pack(len(raw)) + raw


def _encode_field_table(value: dict[str, Any]) -> bytes:
    # pamqp.encode.field_table, encoding keys the way _field_table decoded them.
    if not value:
        return common.Struct.integer.pack(0)
    if not isinstance(value, dict):
        raise TypeError(f"dict required, received {type(value)}")
    data = []
    for key, item in sorted(value.items()):
        raw = key.encode("utf-8", _ERRORS)[:128]  # field names have a 128 byte max
        data.append(common.Struct.byte.pack(len(raw)) + raw)
        try:
            data.append(encode.encode_table_value(item))
        except TypeError as err:
            raise TypeError(f"{key!r} error: {err}") from err
    output = b"".join(data)
    return common.Struct.integer.pack(len(output)) + output


def install() -> None:
    """Make pamqp's codecs tolerant (see the module docstring). Safe to call often."""
    global _installed
    if _installed:
        return
    decode.METHODS["shortstr"] = _short_str
    decode.METHODS["timestamp"] = _timestamp
    decode.METHODS["table"] = _field_table
    decode.TABLE_MAPPING[b"T"] = _timestamp
    decode.TABLE_MAPPING[b"F"] = _field_table
    encode._string = _string
    encode.field_table = _encode_field_table
    encode.METHODS["table"] = _encode_field_table
    _installed = True
