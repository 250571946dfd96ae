"""The operator's in-memory view of the four kinds, fed by kopf's watch events and our own writes."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from incidentio_operator.api import AlertBlackout, AlertRule, DataAlert, Destination, ObjectRef


class Parsed(Protocol):
    @property
    def ref(self) -> ObjectRef: ...


T = TypeVar("T", bound=Parsed)


def _newer_or_unknown(incoming: str, current: str) -> bool:
    """False only when both versions are etcd revisions and the incoming one is older.

    Watch events of our own earlier writes can arrive after the response of a later write;
    taking them would make the operator act on a status it has already replaced.
    """
    if incoming.isdigit() and current.isdigit():
        return int(incoming) >= int(current)
    return True


@dataclass(slots=True)
class Entry(Generic[T]):
    model: T
    # Only what an Event's involvedObject needs, as plain strings (``Index.reference`` builds it when an
    # Event is posted): whole bodies, or even one small dict each, for 50,000 alerts would be most of
    # the operator's memory. apiVersion and kind are interned: one string for all objects of a kind.
    api_version: str
    kind: str
    uid: str
    resource_version: str
    # Seen through kopf's watch (or written by us), not only in the startup listing. A paused
    # standby replica lists but receives no watch events, so it must not act on what it listed.
    live: bool = True
    # The index's write count when this entry was stored: a full list started later that does not
    # contain the object proves it gone; one started earlier proves nothing.
    sequence: int = 0


@dataclass(slots=True)
class Index(Generic[T]):
    entries: dict[ObjectRef, Entry[T]] = field(default_factory=dict)
    # Counts every store into the index (see Entry.sequence).
    sequence: int = 0

    def upsert(self, model: T, body: Mapping[str, Any], *, live: bool = True) -> bool:
        """Store the object unless we already hold a newer version; True when it needs a look."""
        version = str((body.get("metadata") or {}).get("resourceVersion") or "")
        current = self.entries.get(model.ref)
        if current is not None:
            same = bool(version) and version == current.resource_version
            if same or not _newer_or_unknown(version, current.resource_version):
                if live and not current.live:
                    current.live = True
                    return True
                return False
        self.sequence += 1
        meta = body.get("metadata") or {}
        self.entries[model.ref] = Entry(
            model,
            sys.intern(str(body.get("apiVersion") or "")),
            sys.intern(str(body.get("kind") or "")),
            str(meta.get("uid") or ""),
            version,
            live or (current is not None and current.live),
            self.sequence,
        )
        return True

    def known(self, ref: ObjectRef, version: str) -> bool:
        """True when this version (or a newer one) is already held and was seen live: nothing to parse."""
        current = self.entries.get(ref)
        if current is None or not current.live or not version:
            return False
        return version == current.resource_version or not _newer_or_unknown(version, current.resource_version)

    def live(self) -> Iterator[T]:
        return (entry.model for entry in self.entries.values() if entry.live)

    def remove(self, ref: ObjectRef) -> None:
        self.entries.pop(ref, None)

    def absent_from(self, listed: set[ObjectRef], since: int) -> list[ObjectRef]:
        """Objects held since before ``since`` (an Index.sequence) that a full list made after it did not contain."""
        return [ref for ref, entry in self.entries.items() if entry.sequence <= since and ref not in listed]

    def get(self, ref: ObjectRef) -> T | None:
        entry = self.entries.get(ref)
        return entry.model if entry else None

    def reference(self, ref: ObjectRef) -> Mapping[str, Any] | None:
        """apiVersion, kind and the identifying metadata of the object, for posting Events about it."""
        entry = self.entries.get(ref)
        if entry is None:
            return None
        metadata = {"name": ref.name, "namespace": ref.namespace, "uid": entry.uid}
        return {"apiVersion": entry.api_version, "kind": entry.kind, "metadata": metadata}

    def in_namespace(self, namespace: str) -> Iterator[T]:
        return (entry.model for ref, entry in self.entries.items() if ref.namespace == namespace)

    def __iter__(self) -> Iterator[T]:
        return (entry.model for entry in self.entries.values())

    def __len__(self) -> int:
        return len(self.entries)


@dataclass(slots=True)
class AlertIndex(Index[DataAlert]):
    """The alerts; the few that hold an incident or are not settled kept apart; how many each rule matches.

    With 50,000 alerts present nearly all are settled and hold nothing. What the operator looks at on every
    delivery (a destination's holders), every drift round and every sweep is only the others, and a rule's
    ``matchedAlerts`` (recounted every summary delay while alerts arrive) is a running count: each costs what
    is in flight, not what is stored (a walk over 50,000 alerts held the event loop for 60-140 ms).
    """

    # Insertion-ordered sets (dicts of None) of the refs whose model holds an incident or is unsettled.
    holding: dict[ObjectRef, None] = field(default_factory=dict)
    unsettled: dict[ObjectRef, None] = field(default_factory=dict)
    # Per rule (namespace and name), the stored alerts whose status.matchedRules names it.
    matches: dict[ObjectRef, int] = field(default_factory=dict)

    def upsert(self, model: DataAlert, body: Mapping[str, Any], *, live: bool = True) -> bool:
        before = self.entries.get(model.ref)
        stored = Index.upsert(self, model, body, live=live)
        after = self.entries.get(model.ref)
        if after is not None and after is not before:  # a new entry stored, not only `live` flipped
            self._file(model.ref, before.model if before is not None else None, after.model)
        return stored

    def remove(self, ref: ObjectRef) -> None:
        before = self.entries.get(ref)
        Index.remove(self, ref)
        if before is not None:
            self._file(ref, before.model, None)

    def holding_entries(self) -> Iterator[Entry[DataAlert]]:
        """The entries of the alerts that hold an incident that may be open, live or only listed."""
        return self._entries_of(self.holding)

    def unsettled_entries(self) -> Iterator[Entry[DataAlert]]:
        """The entries of the alerts whose status is not settled."""
        return self._entries_of(self.unsettled)

    def _entries_of(self, refs: dict[ObjectRef, None]) -> Iterator[Entry[DataAlert]]:
        # A copy of the refs: the caller may store or remove alerts while it walks them.
        return (entry for ref in list(refs) if (entry := self.entries.get(ref)) is not None)

    def matching(self, rule: ObjectRef) -> int:
        """How many stored alerts (live or only listed) name the rule in status.matchedRules."""
        return self.matches.get(rule, 0)

    def _file(self, ref: ObjectRef, before: DataAlert | None, after: DataAlert | None) -> None:
        for refs, member in (
            (self.holding, after is not None and after.holding),
            (self.unsettled, after is not None and after.unsettled),
        ):
            if member:
                refs[ref] = None
            else:
                refs.pop(ref, None)
        old = set(before.matched_rules) if before is not None else set()
        new = set(after.matched_rules) if after is not None else set()
        if old == new:
            return
        for name in old:
            rule = ObjectRef(ref.namespace, name)
            left = self.matches[rule] - 1
            if left:
                self.matches[rule] = left
            else:
                del self.matches[rule]
        for name in new:
            rule = ObjectRef(ref.namespace, name)
            self.matches[rule] = self.matches.get(rule, 0) + 1


@dataclass(slots=True)
class Store:
    destinations: Index[Destination] = field(default_factory=lambda: Index[Destination]())
    rules: Index[AlertRule] = field(default_factory=lambda: Index[AlertRule]())
    alerts: AlertIndex = field(default_factory=AlertIndex)
    blackouts: Index[AlertBlackout] = field(default_factory=lambda: Index[AlertBlackout]())
