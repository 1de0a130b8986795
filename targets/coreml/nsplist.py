"""A reader for the old-style (NeXTSTEP) property-list text that NSLog prints for an NSDictionary / NSArray:

    { BackendSupport = { ane = 1; "classic_cpu" = 1; }; OpPath = ( { Type = Program; }, ... ); Name = main; }

Dictionaries are `{ key = value; ... }`, arrays `( a, b, )`, strings bare (`ane`, `0.0036`, `ios17.conv`) or
quoted with backslash escapes (`"\\"ane\\""` is the five characters `"ane"`: E5RT's SelectedBackend is a quoted
string that itself holds quotes). Values stay strings; callers convert what they need. Nesting is bounded so a
hostile or broken file fails with ParseError instead of exhausting the stack.
"""
from __future__ import annotations

import re
from typing import Any

from edgekit.errors import ParseError

_BARE = re.compile(r"[A-Za-z0-9_$+/:.\-]+")
_SPACE = re.compile(r"\s*")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "'": "'"}
MAX_DEPTH = 64


def parse_value(text: str, pos: int) -> tuple[Any, int]:
    """The value starting at `pos` (after optional whitespace) and the offset just past it."""
    return _Reader(text).value(pos, 0)


class _Reader:
    def __init__(self, text: str) -> None:
        self.text = text

    def skip(self, pos: int) -> int:
        return _SPACE.match(self.text, pos).end()  # type: ignore[union-attr]  # \s* always matches

    def fail(self, what: str, pos: int) -> ParseError:
        line = self.text.count("\n", 0, pos) + 1
        return ParseError(f"property list: {what}", line=line)

    def value(self, pos: int, depth: int) -> tuple[Any, int]:
        if depth > MAX_DEPTH:
            raise self.fail("nested too deeply", pos)
        pos = self.skip(pos)
        if pos >= len(self.text):
            raise self.fail("ends where a value should start", pos)
        ch = self.text[pos]
        if ch == "{":
            return self.mapping(pos + 1, depth)
        if ch == "(":
            return self.array(pos + 1, depth)
        if ch == '"':
            return self.quoted(pos + 1)
        m = _BARE.match(self.text, pos)
        if m is None:
            raise self.fail(f"unexpected {ch!r}", pos)
        return m.group(0), m.end()

    def mapping(self, pos: int, depth: int) -> tuple[dict[str, Any], int]:
        out: dict[str, Any] = {}
        while True:
            pos = self.skip(pos)
            if pos < len(self.text) and self.text[pos] == "}":
                return out, pos + 1
            key, pos = self.value(pos, depth + 1)
            if not isinstance(key, str):
                raise self.fail("a dictionary key must be a string", pos)
            pos = self.expect(pos, "=")
            out[key], pos = self.value(pos, depth + 1)
            pos = self.expect(pos, ";")

    def array(self, pos: int, depth: int) -> tuple[list[Any], int]:
        out: list[Any] = []
        while True:
            pos = self.skip(pos)
            if pos < len(self.text) and self.text[pos] == ")":
                return out, pos + 1
            item, pos = self.value(pos, depth + 1)
            out.append(item)
            pos = self.skip(pos)
            if pos < len(self.text) and self.text[pos] == ",":
                pos += 1
            elif pos >= len(self.text) or self.text[pos] != ")":
                raise self.fail("expected `,` or `)` in an array", pos)

    def quoted(self, pos: int) -> tuple[str, int]:
        chars: list[str] = []
        while pos < len(self.text):
            ch = self.text[pos]
            if ch == '"':
                return "".join(chars), pos + 1
            if ch == "\\" and pos + 1 < len(self.text):
                chars.append(_ESCAPES.get(self.text[pos + 1], self.text[pos + 1]))
                pos += 2
                continue
            chars.append(ch)
            pos += 1
        raise self.fail("unterminated string", pos)

    def expect(self, pos: int, ch: str) -> int:
        pos = self.skip(pos)
        if pos >= len(self.text) or self.text[pos] != ch:
            raise self.fail(f"expected `{ch}`", pos)
        return pos + 1
