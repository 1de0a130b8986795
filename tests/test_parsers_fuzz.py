"""Fuzzing every device-tool parser with hypothesis: on any input a parser returns a result whose to_dict() is
plain JSON, or raises ParseError. Nothing else (no IndexError, KeyError, ValueError, RecursionError ...).

Inputs: random text; text assembled from random fixture lines (so the parser's own tokens meet each other in odd
orders); and mutated fixtures (truncation, dropped, duplicated and swapped lines, flipped bytes decoded the way
`edgekit parse` decodes files). The budget is modest and derandomized for CI; set EDGEKIT_FUZZ_EXAMPLES (e.g.
5000) to search harder with fresh random seeds.
"""
from __future__ import annotations

import json
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgekit.errors import ParseError
from edgekit.targets.parsers import PARSERS, get_parser
from tests.parser_fixtures import samples

_DEEP = int(os.environ.get("EDGEKIT_FUZZ_EXAMPLES", "0"))


def _fuzz(examples: int) -> settings:
    """~200 examples per parser over the three tests by default (CI budget), derandomized so CI is repeatable."""
    return settings(max_examples=_DEEP or examples, deadline=None, derandomize=not _DEEP, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# Characters that matter to the formats: separators, brackets, quotes, digits, units, tabs and line breaks.
_ALPHABET = st.sampled_from(list("0123456789.-+eE%:;,=[](){}<>\"'\\/@x|#* \t\n\r") + ["\x1e", "\ufeff", "é", "\x00"])
_TEXT = st.one_of(st.text(max_size=400), st.text(alphabet=_ALPHABET, max_size=400))


def _check(kind: str, text: str) -> None:
    try:
        result = get_parser(kind)(text)
    except ParseError:
        return
    json.dumps(result.to_dict(), allow_nan=False)


def _lines(kind: str) -> list[str]:
    out: list[str] = []
    for _, text in samples(kind):
        lines = text.splitlines()
        out.extend(lines[:: max(1, len(lines) // 200)])  # a spread of each file, not all of a 3000-line log
    return out


@pytest.mark.parametrize("kind", list(PARSERS))
def test_random_text(kind: str) -> None:
    @_fuzz(50)
    @given(text=_TEXT)
    def run(text: str) -> None:
        _check(kind, text)

    run()


@pytest.mark.parametrize("kind", list(PARSERS))
def test_shuffled_fixture_lines(kind: str) -> None:
    pool = _lines(kind)
    if not pool:
        pytest.skip(f"no fixture of kind {kind}")

    @_fuzz(50)
    @given(picked=st.lists(st.sampled_from(pool), max_size=40), noise=st.lists(_TEXT, max_size=3))
    def run(picked: list[str], noise: list[str]) -> None:
        _check(kind, "\n".join(picked + noise))

    run()


@pytest.mark.parametrize("kind", list(PARSERS))
def test_mutated_fixtures(kind: str) -> None:
    texts = [text for _, text in samples(kind)]
    if not texts:
        pytest.skip(f"no fixture of kind {kind}")

    @_fuzz(100)
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        text = data.draw(st.sampled_from(texts), label="fixture")
        for _ in range(data.draw(st.integers(1, 3), label="mutations")):
            text = _mutate(data, text)
        _check(kind, text)

    run()


def _mutate(data: st.DataObject, text: str) -> str:
    op = data.draw(st.sampled_from(["truncate", "drop", "duplicate", "swap", "flip", "insert"]), label="op")
    if op == "truncate":
        return text[: data.draw(st.integers(0, len(text)), label="cut")]
    lines = text.split("\n")
    if op in ("drop", "duplicate", "swap") and lines:
        k = data.draw(st.integers(0, len(lines) - 1), label="line")
        j = data.draw(st.integers(0, len(lines) - 1), label="other")
        if op == "drop":
            del lines[k: k + data.draw(st.integers(1, 5), label="count")]
        elif op == "duplicate":
            lines.insert(j, lines[k])
        else:
            lines[k], lines[j] = lines[j], lines[k]
        return "\n".join(lines)
    if op == "flip":
        raw = bytearray(text.encode("utf-8"))
        if raw:
            for _ in range(data.draw(st.integers(1, 8), label="flips")):
                at = data.draw(st.integers(0, len(raw) - 1), label="byte")
                raw[at] ^= data.draw(st.integers(1, 255), label="mask")
        return raw.decode("utf-8", errors="replace")
    at = data.draw(st.integers(0, len(text)), label="at")
    return text[:at] + data.draw(_TEXT, label="inserted") + text[at:]
