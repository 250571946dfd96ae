"""An API key that cannot go into an Authorization header is described by kind and position, never shown."""

from __future__ import annotations

import pytest

from incidentio_operator.api.secrets import describe_unsendable

KEY = "inc_live_7fQk2LmZ9pR4"


@pytest.mark.parametrize(
    ("value", "description"),
    [
        ("\ufeff" + KEY, "a byte-order mark (U+FEFF) at position 0"),
        (KEY[:4] + "\u200b" + KEY[4:], "a zero-width formatting character (U+200B) at position 4"),
        (KEY[:4] + "\u2060" + KEY[4:], "an invisible formatting character (U+2060) at position 4"),
        (KEY[:6] + "\u200e" + KEY[6:], "an invisible formatting character (U+200E) at position 6"),
        (KEY[:5] + "\n" + KEY[5:], "a line break (U+000A) at position 5"),
        (KEY[:5] + "\r\n" + KEY[5:], "a line break (U+000D) at position 5"),
        (KEY[:5] + "\u2028" + KEY[5:], "a line break (U+2028) at position 5"),
        (KEY[:3] + "\x00" + KEY[3:], "a control character (U+0000) at position 3"),
        (KEY[:3] + "\u00a0" + KEY[3:], "a non-ASCII space (U+00A0) at position 3"),
        (KEY[:7] + "é" + KEY[7:], "a non-ASCII character at position 7"),
        (KEY[:7] + "\u041a" + KEY[7:], "a non-ASCII character at position 7"),
    ],
    ids=[
        "byte-order-mark",
        "zero-width-space",
        "word-joiner",
        "left-to-right-mark",
        "newline",
        "crlf",
        "line-separator",
        "nul",
        "no-break-space",
        "accented-letter",
        "cyrillic-letter",
    ],
)
def test_each_kind_of_character_is_named_with_its_position(value: str, description: str) -> None:
    assert describe_unsendable(value) == description


@pytest.mark.parametrize(
    "value", [KEY, f"  {KEY}\n", f"\t{KEY}\r\n", f"\u00a0{KEY}\u2028", "", "Bearer-ish token.with_~+/="]
)
def test_visible_ascii_and_whitespace_at_the_ends_are_sendable(value: str) -> None:
    """The operator strips leading and trailing whitespace (str.strip), so those are forgiven."""
    assert describe_unsendable(value) is None


def test_positions_count_in_the_value_as_given_even_after_leading_whitespace() -> None:
    assert describe_unsendable("\n  " + KEY[:2] + "\u200b" + KEY[2:]) == (
        "a zero-width formatting character (U+200B) at position 5"
    )


def test_the_first_offending_character_is_the_one_described() -> None:
    assert describe_unsendable(KEY + "é\ufeff") == f"a non-ASCII character at position {len(KEY)}"


@pytest.mark.parametrize("letter", ["é", "ß", "Ж", "中", "😀"])
def test_a_visible_character_of_the_key_is_never_named(letter: str) -> None:
    """A visible character could be part of the key itself: the description must not reveal it."""
    description = describe_unsendable(KEY + letter + KEY)
    assert description is not None
    assert letter not in description
    assert f"{ord(letter):04X}" not in description
    assert not any(part in description for part in (KEY, KEY[:4], KEY[-4:]))
