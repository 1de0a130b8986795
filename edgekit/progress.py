"""Progress on stderr for long work: named steps (tqdm), silent when not wanted (JSON output, tests)."""
from __future__ import annotations

import sys
from types import TracebackType


class Steps:
    """A bar over named steps: `with Steps(["export", "quantize"]) as s: ...; s.next()`."""

    def __init__(self, names: list[str], enabled: bool = True) -> None:
        self.names = names
        # Only for a person watching: logs and captured output get the final messages, not bar redraws.
        self.enabled = enabled and sys.stderr is not None and sys.stderr.isatty()
        self._bar = None
        self._i = 0

    def __enter__(self) -> "Steps":
        if self.enabled:
            from tqdm import tqdm

            self._bar = tqdm(total=len(self.names), file=sys.stderr, leave=False, dynamic_ncols=True,
                             bar_format="{desc} {bar} {n_fmt}/{total_fmt} [{elapsed}]{postfix}")
            self._bar.set_description(self.names[0])
        return self

    def next(self) -> None:
        self._i += 1
        if self._bar is not None:
            self._bar.update(1)
            if self._i < len(self.names):
                self._bar.set_description(self.names[self._i])

    def detail(self, text: str) -> None:
        """Where the current step is ("12/40 images"), shown after the bar."""
        if self._bar is not None:
            self._bar.set_postfix_str(text, refresh=True)

    def __exit__(self, exc_type: type | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._bar is not None:
            self._bar.close()
