"""Small helpers every parser shares: line splitting, number reading and JSON loading that fail only with
ParseError, so a parser can be fed any text (a truncated capture, a wrong file) and still answer cleanly."""
from __future__ import annotations

import json
import math
import re
from typing import Any

from edgekit.errors import ParseError

# A decimal number as C++ ostreams and printf("%g") write it: 12, 0.5, .5, 2.95034e+06, -1.
NUM = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
# No tool prints a time, size or clock beyond this; a bigger number is a corrupt file. The bound also keeps
# sums and squares of parsed values finite (math.fsum raises OverflowError past 1e308).
MAX_ABS = 1e15
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def split_lines(text: str) -> list[str]:
    """Lines without their endings (LF, CRLF or CR), a leading BOM removed.

    Not str.splitlines(): that also splits on U+001C..U+001E, and TensorRT separates the ONNX names in a layer's
    `Metadata` with U+001E, which must stay inside its line.
    """
    if text.startswith("\ufeff"):
        text = text[1:]
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def to_float(token: str, line: int | None = None, what: str = "number") -> float:
    """A finite float from text the caller matched with NUM (or anything else: bad text is a ParseError)."""
    try:
        value = float(token)
    except (TypeError, ValueError, OverflowError):
        raise ParseError(f"cannot read {what} {str(token)[:40]!r}", line=line) from None
    if not math.isfinite(value) or abs(value) > MAX_ABS:
        raise ParseError(f"{what} {token[:40]!r} is out of range", line=line)
    return value


def to_int(token: str, line: int | None = None, what: str = "integer") -> int:
    value = to_float(token, line, what)
    if value != int(value):
        raise ParseError(f"{what} {token!r} is not a whole number", line=line)
    return int(value)


def json_number(value: Any, what: str) -> float:
    """A JSON value that must be a finite number (bools are not numbers here, though Python says they are)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ParseError(f"{what} is {type(value).__name__}, not a number")
    try:
        out = float(value)
    except OverflowError:
        raise ParseError(f"{what} is out of range") from None
    if not math.isfinite(out) or abs(out) > MAX_ABS:
        raise ParseError(f"{what} is out of range")
    return out


def opt_json_number(value: Any, what: str) -> float | None:
    return None if value is None else json_number(value, what)


def load_json(text: str, what: str) -> Any:
    """json.loads, with every failure (syntax, NaN/Infinity, nesting too deep, huge integers) as ParseError."""
    def no_constants(name: str) -> Any:
        raise ParseError(f"{what}: {name} is not a number JSON allows")

    if text.startswith("\ufeff"):
        text = text[1:]
    try:
        return json.loads(text, parse_constant=no_constants)
    except json.JSONDecodeError as exc:
        raise ParseError(f"{what} is not valid JSON ({exc.msg})", line=exc.lineno) from None
    except (ValueError, RecursionError) as exc:  # int digits limit, nesting depth
        raise ParseError(f"{what} is not readable JSON ({type(exc).__name__})") from None


def strip_ansi(line: str) -> str:
    """Terminal colour codes (jetson_release, some adb shells) are not part of the values."""
    return ANSI.sub("", line) if "\x1b" in line else line
