"""Kubernetes' rules for names, label keys and label values, with the API server's own messages.

Each function returns the messages the API server gives for `value`, none when it is valid, as
k8s.io/apimachinery does: `IsDNS1123Subdomain`, `IsDNS1123Label` (pkg/api/validate/content/dns.go),
`IsLabelKey` (which `IsQualifiedName` now is) and `IsLabelValue` (pkg/api/validate/content/kube.go),
`IsDNS1035Label` (pkg/util/validation/validation.go), `IsValidPathSegmentName`
(pkg/api/validation/path/name.go), with `MaxLenError` and `RegexError` (pkg/api/validate/content/errors.go).
Lengths are counted in bytes of UTF-8, as Go's len() counts them. Servers before the move to
pkg/api/validate/content say "characters" for "bytes" and "a qualified name" for "a valid label key".
"""

from __future__ import annotations

import re
from collections.abc import Callable

_DNS1123_LABEL = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN = _DNS1123_LABEL + "(\\." + _DNS1123_LABEL + ")*"
_DNS1035_LABEL = "[a-z]([-a-z0-9]*[a-z0-9])?"
_LABEL_KEY_NAME = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_LABEL_VALUE = "(" + _LABEL_KEY_NAME + ")?"

_DNS1123_LABEL_MESSAGE = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and "
    "end with an alphanumeric character"
)
_DNS1123_SUBDOMAIN_MESSAGE = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must "
    "start and end with an alphanumeric character"
)
_DNS1035_LABEL_MESSAGE = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic "
    "character, and end with an alphanumeric character"
)
_LABEL_KEY_MESSAGE = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
)
_LABEL_VALUE_MESSAGE = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must "
    "start and end with an alphanumeric character"
)

LABEL_VALUE_MAX_BYTES = 63
DNS1123_LABEL_MAX_BYTES = 63
DNS1123_SUBDOMAIN_MAX_BYTES = 253

NameRule = Callable[[str], list[str]]


def _matches(pattern: str, value: str) -> bool:
    # Go's regexp `$` is the end of text; Python's re.fullmatch is the same, where `$` would admit a final newline.
    return re.fullmatch(pattern, value) is not None


def _size(value: str) -> int:
    return len(value.encode("utf-8"))


def max_length_error(limit: int) -> str:
    """apimachinery's `MaxLenError`."""
    return f"must be no more than {limit} bytes"


def regex_error(message: str, pattern: str, *examples: str) -> str:
    """apimachinery's `RegexError`, with its spacing: examples joined by "', " and " or "."""
    if not examples:
        return f"{message} (regex used for validation is '{pattern}')"
    shown = " or ".join(f"'{example}', " for example in examples)
    return f"{message} (e.g. {shown}regex used for validation is '{pattern}')"


def _bounded_pattern(value: str, limit: int, pattern: str, message: str, *examples: str) -> list[str]:
    """The problems of `value` against a byte limit and a pattern: the shape of most apimachinery checks."""
    problems = []
    if _size(value) > limit:
        problems.append(max_length_error(limit))
    if not _matches(pattern, value):
        problems.append(regex_error(message, pattern, *examples))
    return problems


def is_dns1123_subdomain(value: str) -> list[str]:
    """The problems of `value` as a lowercase RFC 1123 subdomain: at most 253 bytes, like `example.com`."""
    return _bounded_pattern(
        value, DNS1123_SUBDOMAIN_MAX_BYTES, _DNS1123_SUBDOMAIN, _DNS1123_SUBDOMAIN_MESSAGE, "example.com"
    )


def is_dns1123_label(value: str) -> list[str]:
    """The problems of `value` as a lowercase RFC 1123 label: at most 63 bytes, like `my-name`, no dots."""
    problems = _bounded_pattern(
        value, DNS1123_LABEL_MAX_BYTES, _DNS1123_LABEL, _DNS1123_LABEL_MESSAGE, "my-name", "123-abc"
    )
    # A valid subdomain that is no label has dots as its only fault of form, and is told just that.
    if problems and problems[-1].startswith(_DNS1123_LABEL_MESSAGE) and _matches(_DNS1123_SUBDOMAIN, value):
        problems[-1] = "must not contain dots"
    return problems


def is_dns1035_label(value: str) -> list[str]:
    """The problems of `value` as an RFC 1035 label (a Service's name): a letter first, at most 63 bytes."""
    return _bounded_pattern(
        value, DNS1123_LABEL_MAX_BYTES, _DNS1035_LABEL, _DNS1035_LABEL_MESSAGE, "my-name", "abc-123"
    )


def is_path_segment_name(value: str) -> list[str]:
    """The problems of `value` as a name that must fit in a URL path segment (RBAC objects' names)."""
    if value in (".", ".."):
        return [f"may not be '{value}'"]
    return [f"may not contain '{part}'" for part in ("/", "%") if part in value]


def is_label_key(value: str) -> list[str]:
    """The problems of `value` as a label key: an optional DNS subdomain prefix and '/', then a name of 63 bytes."""
    parts = value.split("/")
    if len(parts) > 2:
        return [
            "a valid label key "
            + regex_error(_LABEL_KEY_MESSAGE, _LABEL_KEY_NAME, "MyName", "my.name", "123-abc")
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    problems = []
    name = parts[-1]
    if len(parts) == 2:
        prefix = parts[0]
        if not prefix:
            problems.append("prefix part must be non-empty")
        else:
            problems += [f"prefix part {problem}" for problem in is_dns1123_subdomain(prefix)]
    if not name:
        problems.append("name part must be non-empty")
    elif _size(name) > LABEL_VALUE_MAX_BYTES:
        problems.append(f"name part {max_length_error(LABEL_VALUE_MAX_BYTES)}")
    if not _matches(_LABEL_KEY_NAME, name):
        problems.append("name part " + regex_error(_LABEL_KEY_MESSAGE, _LABEL_KEY_NAME, "MyName", "my.name", "123-abc"))
    return problems


def is_label_value(value: str) -> list[str]:
    """The problems of `value` as a label value: empty, or up to 63 bytes of [A-Za-z0-9._-] with alphanumeric ends."""
    return _bounded_pattern(
        value, LABEL_VALUE_MAX_BYTES, _LABEL_VALUE, _LABEL_VALUE_MESSAGE, "MyValue", "my_value", "12345"
    )


def as_prefix(rule: NameRule) -> NameRule:
    """`rule` applied to a generateName: a trailing '-' is allowed there (apimachinery's `maskTrailingDash`)."""

    def check(value: str) -> list[str]:
        return rule(value[:-1] + "a" if len(value) > 1 and value.endswith("-") else value)

    return check


def go_quote(value: str) -> str:
    """`value` as Go's %q prints it in a message: double-quoted, non-printable characters escaped."""
    escapes = {'"': '\\"', "\\": "\\\\", "\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r"}
    escapes |= {"\t": "\\t", "\v": "\\v"}
    rendered = []
    for character in value:
        code = ord(character)
        if character in escapes:
            rendered.append(escapes[character])
        elif character.isprintable():
            rendered.append(character)
        elif code < 0x80:
            rendered.append(f"\\x{code:02x}")
        elif code < 0x10000:
            rendered.append(f"\\u{code:04x}")
        else:
            rendered.append(f"\\U{code:08x}")
    return '"' + "".join(rendered) + '"'
