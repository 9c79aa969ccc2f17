"""The text of one string field of a JSON object, decoded as the object streams in.

A structured step's reply streams as JSON (`{"reasoning": "2+2 is ...`); a client watching a
judge think wants the reasoning's words, not braces, keys and escapes. `FieldText` is fed the
reply's chunks as they come and gives back the decoded characters of one top-level string field.
It never fails: text that is not JSON yields nothing, and the parsed result stays the authority.
"""

from __future__ import annotations

_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


class FieldText:
    def __init__(self, field: str) -> None:
        self._field = field
        self._depth = 0
        self._in_string = False
        self._escape = ""  # "" outside an escape; "\\" just after a backslash; "\\uXX…" inside \u
        self._pending_high = ""  # a high surrogate waiting for its low half
        self._expect_key = False
        self._is_key = False
        self._key: list[str] = []
        self._last_key = ""
        self._capturing = False

    def feed(self, chunk: str) -> str:
        """The field's decoded characters in `chunk` (often "")."""
        out: list[str] = []
        for ch in chunk:
            if self._in_string:
                decoded = self._string_char(ch)
                if decoded and self._is_key:
                    self._key.append(decoded)
                elif decoded and self._capturing:
                    out.append(decoded)
            else:
                self._structural(ch)
        return "".join(out)

    def _structural(self, ch: str) -> None:
        if ch == '"':
            self._in_string = True
            self._is_key = self._depth == 1 and self._expect_key
            self._capturing = self._depth == 1 and not self._is_key and self._last_key == self._field
            self._key = []
        elif ch in "{[":
            self._depth += 1
            self._expect_key = ch == "{" and self._depth == 1
        elif ch in "}]":
            self._depth -= 1
        elif ch == "," and self._depth == 1:
            self._expect_key = True
        elif ch == ":" and self._depth == 1:
            self._expect_key = False

    def _string_char(self, ch: str) -> str:
        """The character `ch` decodes to inside a string ("" for none yet); closes the string on `"`."""
        if self._escape == "\\":
            if ch == "u":
                self._escape = "\\u"
                return ""
            self._escape = ""
            return _ESCAPES.get(ch, ch)
        if self._escape:
            self._escape += ch
            if len(self._escape) < 6:
                return ""
            code, self._escape = self._escape[2:], ""
            try:
                return self._code_point(int(code, 16))
            except ValueError:
                return ""
        if ch == "\\":
            self._escape = "\\"
            return ""
        if ch == '"':
            self._in_string = False
            if self._is_key:
                self._last_key = "".join(self._key)
            return ""
        return ch

    def _code_point(self, n: int) -> str:
        if 0xD800 <= n < 0xDC00:
            self._pending_high = chr(n)
            return ""
        high, self._pending_high = self._pending_high, ""
        if 0xDC00 <= n < 0xE000:  # a low surrogate: half of a pair, never a character of its own
            return chr(0x10000 + ((ord(high) - 0xD800) << 10) + (n - 0xDC00)) if high else ""
        return chr(n)
