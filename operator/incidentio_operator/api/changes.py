"""The closed vocabulary of schema change types and which of them are breaking: the one table the CRDs, the docs
and rule matching follow.

The categories and the breaking/non-breaking split follow AnomalyArmor's change vocabulary
(docs.anomalyarmor.ai, "Schema changes" and "Alert rules": breaking = removing or changing something a
downstream query, model or writer relies on; non-breaking = additive or safe).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

CHANGE_CLASSES = ("Any", "Breaking", "NonBreaking")


@dataclass(frozen=True)
class ChangeType:
    name: str
    category: str
    breaking: bool
    meaning: str


CHANGE_TYPES: tuple[ChangeType, ...] = (
    ChangeType("column_added", "Column", False, "a column appeared"),
    ChangeType("column_removed", "Column", True, "a column was dropped: queries naming it fail"),
    ChangeType("column_renamed", "Column", True, "a column was renamed: the old name no longer works"),
    ChangeType("column_type_changed", "Column", True, "a column's data type changed"),
    ChangeType("column_nullability_changed", "Column", True, "a column became nullable, or NOT NULL"),
    ChangeType("column_default_changed", "Column", False, "a column's default value changed"),
    ChangeType("table_added", "Table", False, "a table appeared"),
    ChangeType("table_removed", "Table", True, "a table was dropped"),
    ChangeType("table_renamed", "Table", True, "a table was renamed"),
    ChangeType("view_added", "View", False, "a view appeared"),
    ChangeType("view_removed", "View", True, "a view was dropped"),
    ChangeType("schema_added", "Schema", False, "a schema appeared"),
    ChangeType("schema_removed", "Schema", True, "a schema was dropped"),
    ChangeType("index_added", "Index", False, "an index was created"),
    ChangeType("index_removed", "Index", False, "an index was dropped (slower, not wrong)"),
    ChangeType("unique_constraint_added", "Constraint", True, "writes of duplicate values now fail"),
    ChangeType("unique_constraint_removed", "Constraint", False, "a unique constraint was dropped"),
    ChangeType("foreign_key_added", "Foreign key", False, "a foreign key was declared"),
    ChangeType("foreign_key_removed", "Foreign key", True, "a foreign key was dropped: joins lose their guarantee"),
    ChangeType("primary_key_added", "Primary key", False, "a primary key was declared"),
    ChangeType("primary_key_removed", "Primary key", True, "a primary key was dropped: rows may repeat"),
    ChangeType("primary_key_changed", "Primary key", True, "a primary key's columns changed"),
)

CHANGE_TYPE_NAMES = tuple(change.name for change in CHANGE_TYPES)
BREAKING_CHANGE_TYPES = frozenset(change.name for change in CHANGE_TYPES if change.breaking)


def class_matches(change_class: str, change_types: Iterable[str]) -> bool:
    """Whether an alert with these change types is of ``change_class``.

    ``Breaking``: at least one change is breaking. ``NonBreaking``: there are changes and none is
    breaking. ``Any``: everything, changes or not.
    """
    if change_class == "Any":
        return True
    types = list(change_types)
    breaking = any(name in BREAKING_CHANGE_TYPES for name in types)
    return breaking if change_class == "Breaking" else bool(types) and not breaking
