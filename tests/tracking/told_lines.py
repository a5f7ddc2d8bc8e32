"""A text stream that a test can wait on: the lines the tracker tells the user, and a wait
(with a deadline) for a line holding some text; synchronisation without sleeps."""

from __future__ import annotations

import io
import threading


class Told(io.StringIO):
    """``wait_for(text)``: block until a written line holds ``text`` (AssertionError after
    ``timeout_s``); ``count(text)``: how many lines hold it."""

    def __init__(self) -> None:
        super().__init__()
        self._written = threading.Condition()

    def write(self, s: str) -> int:
        with self._written:
            n = super().write(s)
            self._written.notify_all()
            return n

    @property
    def lines(self) -> list[str]:
        with self._written:
            return self.getvalue().splitlines()

    def count(self, text: str) -> int:
        return sum(text in line for line in self.lines)

    def wait_for(self, text: str, timeout_s: float = 30.0) -> str:
        with self._written:
            found = self._written.wait_for(lambda: self.count(text) > 0, timeout_s)
        assert found, f"no line with {text!r} in {timeout_s} s; told: {self.lines}"
        return next(line for line in self.lines if text in line)
