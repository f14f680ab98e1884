"""PAN masking: no full card number is written anywhere past landing (PCI DSS 3.4.1 / 3.5.1)."""

from __future__ import annotations

import re

import pyarrow as pa
import pyarrow.compute as pc

# 13-19 digits not glued to other letters or digits: the shape of a card number (PAN). The same token rule as
# the dbt `no_unmasked_pan` test (maximal runs of [0-9A-Za-z]): digits inside an id such as CMB2024030400000009
# are part of that id, and masking them would corrupt a join key.
PAN_CANDIDATE = re.compile(r"(?<![0-9A-Za-z])\d{13,19}(?![0-9A-Za-z])")


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _mask_match(m: re.Match) -> str:
    s = m.group(0)
    return s[:6] + "*" * (len(s) - 10) + s[-4:] if luhn_ok(s) else s


def mask_pans(text: str) -> str:
    """Mask every Luhn-valid 13-19 digit run to its first 6 and last 4 digits."""
    return PAN_CANDIDATE.sub(_mask_match, text)


def mask_pans_array(arr: pa.Array) -> pa.Array:
    """Vectorised: only values that contain a candidate digit run go through Python."""
    if len(arr) == 0:
        return arr
    hit = pc.fill_null(pc.match_substring_regex(arr, r"(^|[^0-9A-Za-z])\d{13,19}([^0-9A-Za-z]|$)"), False)
    if not pc.any(hit).as_py():
        return arr
    values = arr.to_pylist()
    for i in pc.indices_nonzero(hit).to_pylist():
        values[i] = mask_pans(values[i])
    return pa.array(values, type=arr.type)
