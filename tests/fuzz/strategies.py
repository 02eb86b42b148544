"""Mutations of valid seed files: the bugs of parsers live near valid input, not in random noise."""

from __future__ import annotations

from hypothesis import strategies as st

#: Values written over length fields: zero, off by one, all ones, huge, negative as signed.
_LENGTHS = (
    b"\x00\x00",
    b"\xff\xff",
    b"\x00\x00\x00\x00",
    b"\xff\xff\xff\xff",
    b"\xfe\xff\xff\x7f",
    b"\x01\x00\x00\x80",
    b"\x10\x00",
)


@st.composite
def mutated(draw: st.DrawFn, seeds: list[bytes], focus: int = 4096) -> bytes:
    """One seed with 1..6 edits; positions mostly in the first ``focus`` bytes (the headers)."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 6))):
        if not data:
            data += draw(st.binary(min_size=1, max_size=16))
            continue
        limit = min(len(data), focus) if draw(st.integers(0, 3)) else len(data)
        at = draw(st.integers(0, max(limit - 1, 0)))
        op = draw(
            st.sampled_from(("flip", "byte", "length", "insert", "delete", "truncate", "dup"))
        )
        if op == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "byte":
            data[at] = draw(st.integers(0, 255))
        elif op == "length":
            value = draw(st.sampled_from(_LENGTHS))
            data[at : at + len(value)] = value
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=64))
        elif op == "delete":
            del data[at : at + draw(st.integers(1, 64))]
        elif op == "truncate":
            del data[at:]
        else:  # duplicate a slice: repeated structures, loops
            size = draw(st.integers(1, 256))
            data[at:at] = data[at : at + size]
    return bytes(data)
