"""Whether an API key read from a Secret can be sent in an HTTP Authorization header, told without showing it."""

from __future__ import annotations

import unicodedata

# Characters that end a line (Unicode's mandatory breaks, UAX #14 BK/CR/LF/NL): in a header, a line break
# ends the field, so HTTP clients refuse to send it.
_LINE_BREAKS = frozenset("\n\r\x0b\x0c\x85\u2028\u2029")
_BYTE_ORDER_MARK = "\ufeff"


def _kind_of(character: str) -> str | None:
    """What `character` is, if it cannot be part of a key sent as a header value; None if it can.

    A header value may hold visible ASCII, spaces and tabs (RFC 9110 §5.5, field-vchar and OWS; obs-text is
    obsolete and HTTP clients refuse or mangle it). Invisible characters name their code point, which tells
    nothing about the key; a visible non-ASCII character does not, since it could be part of the key.
    """
    if " " <= character <= "~" or character == "\t":
        return None
    code = f"U+{ord(character):04X}"
    if character == _BYTE_ORDER_MARK:
        return f"a byte-order mark ({code})"
    if character in _LINE_BREAKS:
        return f"a line break ({code})"
    category = unicodedata.category(character)
    if category == "Cf":
        width = "a zero-width" if unicodedata.name(character, "").startswith("ZERO WIDTH") else "an invisible"
        return f"{width} formatting character ({code})"
    if category == "Cc":
        return f"a control character ({code})"
    if category.startswith("Z"):
        return f"a non-ASCII space ({code})"
    return "a non-ASCII character"


def describe_unsendable(value: str) -> str | None:
    """Why the API key `value` cannot be sent in an Authorization header, or None when it can.

    `value` is taken as the operator takes it: leading and trailing whitespace stripped (str.strip), so a
    trailing newline is forgiven. The first offending character is described by its kind and its position,
    counted from 0 in `value` as given: e.g. "a byte-order mark (U+FEFF) at position 0". The description
    never contains the value or any of its visible characters, so it is safe for logs, Events and status.
    """
    stripped = value.strip()
    offset = len(value) - len(value.lstrip())
    for index, character in enumerate(stripped):
        kind = _kind_of(character)
        if kind is not None:
            return f"{kind} at position {offset + index}"
    return None
