"""``preset: ps3.15-basic``: PS3.15 Table E.1-1 compiled into per-tag actions, with the E.3 options.

Option precedence per row: an enabled option's ``K`` beats another enabled option's ``C``, which beats
the Basic Profile code. Composite codes are resolved without IOD Type tables, conservatively and only
for elements present in the source (nothing is inserted):

==========  ==========================================================================
code        action on a present element
==========  ==========================================================================
X           remove
Z           empty value (zero length; an empty sequence)
D           dummy value valid for the VR; a sequence keeps its items with their
            free text replaced by dummies ("dummy content"), UIDs remapped
U           UID remapped through the job's UID map
K           keep (a sequence's items are still processed)
C           clean: dates shifted by the subject offset, times kept, names emptied,
            UIDs remapped, free text kept minus every identifying value of the file,
            sequences processed in "clean" mode, binary kept
X/Z         Z (empty is valid for Type 2 and 3; removal is not for Type 2)
X/D, Z/D,   D (a dummy is valid for Type 1, 2 and 3)
X/Z/D
X/Z/U*      keep the sequence and remap the UIDs it references (items processed)
==========  ==========================================================================
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from pydicom.datadict import get_entry

from fw_gear_deid.standard import OPTIONS, table_rows

#: Resolved actions.
REMOVE, EMPTY, DUMMY, UID, KEEP, CLEAN, REFERENCES = (
    "remove",
    "empty",
    "dummy",
    "uid",
    "keep",
    "clean",
    "references",
)

_COMPOSITE = {
    "X": REMOVE,
    "Z": EMPTY,
    "D": DUMMY,
    "U": UID,
    "K": KEEP,
    "C": CLEAN,
    "X/Z": EMPTY,
    "X/D": DUMMY,
    "Z/D": DUMMY,
    "X/Z/D": DUMMY,
    "X/Z/U*": REFERENCES,
    "X/Z/U": REFERENCES,
}


def resolve_code(code: str) -> str:
    """The concrete action of a Table E.1-1 code (see the module table)."""
    return _COMPOSITE.get(code.strip(), REMOVE)


def effective_code(row: dict[str, str], options: Iterable[str]) -> str:
    """A row's code with the enabled options applied (K over C over the Basic Profile code)."""
    codes = [row.get(OPTIONS[name].column or "") for name in options if name in OPTIONS]
    codes = [code for code in codes if code]
    if "K" in codes:
        return "K"
    if "C" in codes:
        return "C"
    return row["basicProfile"]


@dataclass
class PresetRules:
    """Table E.1-1 under a set of options: public tags, 50xx/60xx wildcards, the private row."""

    options: tuple[str, ...]
    by_tag: dict[int, str] = field(default_factory=dict)
    repeaters: list[tuple[int, int | None, str]] = field(default_factory=list)
    private: str = REMOVE

    @classmethod
    def build(cls, options: Iterable[str]) -> PresetRules:
        enabled = tuple(option for option in options if option in OPTIONS)
        rules = cls(enabled)
        for row in table_rows():
            action = resolve_code(effective_code(row, enabled))
            ident = row["id"].lower()
            if ident.startswith(("50xx", "60xx")):
                element = None if ident[4:] == "xxxx" else int(ident[4:], 16)
                rules.repeaters.append((int(ident[:2], 16) << 8, element, action))
            elif "gggg" in ident or not all(c in "0123456789abcdef" for c in ident):
                rules.private = action  # "(gggg,eeee) where gggg is odd"
            else:
                rules.by_tag[int(ident, 16)] = action
        if "retain-safe-private" in enabled:
            rules.private = CLEAN
        overlay = [a for base, element, a in rules.repeaters if (base, element) == (0x6000, 0x3000)]
        if overlay == [REMOVE]:
            # Without its Overlay Data an overlay plane is an invalid module (Rows, Type, Origin
            # are Type 1 together): the whole 60xx group goes.
            rules.repeaters.append((0x6000, None, REMOVE))
        return rules

    def action_for(self, tag: int) -> str | None:
        """The preset action of a public tag (wildcard rows included), None when the table is silent."""
        action = self.by_tag.get(tag)
        if action is not None:
            return action
        group, element = tag >> 16, tag & 0xFFFF
        for base, wanted, repeater_action in self.repeaters:
            if group & 0xFF00 == base and (wanted is None or wanted == element):
                return repeater_action
        if group % 2 == 0 and group != 0x0002 and element != 0x0000 and not _known_tag(tag):
            # A public tag the dictionary does not know (a newer edition, or a vendor writing in
            # a public group): the table cannot have classified it, so it cannot be kept.
            return REMOVE
        return None

    @property
    def retains_uids(self) -> bool:
        return "retain-uids" in self.options

    @property
    def dates_mode(self) -> str:
        """``full`` (keep), ``modified`` (shift) or ``basic`` (table removes; others shifted)."""
        if "retain-long-full-dates" in self.options:
            return "full"
        if "retain-long-modified-dates" in self.options:
            return "modified"
        return "basic"

    def describe(self) -> list[str]:
        counts: dict[str, int] = {}
        for action in self.by_tag.values():
            counts[action] = counts.get(action, 0) + 1
        summary = ", ".join(f"{name} {count}" for name, count in sorted(counts.items()))
        options = ", ".join(self.options) or "no options"
        return [
            f"preset ps3.15-basic ({options}): {len(self.by_tag)} table attributes ({summary})",
            f"50xx/60xx rows: {len(self.repeaters)} (curves, overlay data and comments)",
        ]


def _known_tag(tag: int) -> bool:
    try:
        get_entry(tag)
    except KeyError:
        return False
    return True
