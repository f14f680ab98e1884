"""PAN masking: no full card number is written anywhere past landing (PCI DSS 3.4.1 / 3.5.1)."""

from __future__ import annotations

import re

import pyarrow as pa
import pyarrow.compute as pc

# 13-19 digits not glued to other letters or digits: the shape of a card number (PAN). The same token rule as
# the dbt `no_unmasked_pan` test (maximal runs of [0-9A-Za-z]): digits inside an id such as CMB2024030400000009
# are part of that id, and masking them would corrupt a join key.
PAN_CANDIDATE = re.compile(r"(?<![0-9A-Za-z])\d{13,19}(?![0-9A-Za-z])")


# A card number's digits: 13-19 under a prefix a card network issues under (ISO/IEC 7812 major industry identifiers
# 1 and 3-6, the 2-series of Mastercard and Mir, UnionPay's and RuPay's 81/82). Other digit runs are not payment
# card numbers: a UnionPay merchant code (898...), an Alipay PID (2088...), a date-time (20240304...). About one in
# ten of those is Luhn-valid by chance, and masking it would corrupt a merchant id or a settlement remark that
# reconciliation matches on. The dbt macro `pan_digits_pattern` spells the same pattern (a test keeps them equal).
PAN_DIGITS = r"([13-6][0-9]{12,18}|(2[2-7]|8[12])[0-9]{11,17})"
_PAN_DIGITS = re.compile(PAN_DIGITS)


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


def could_be_pan(digits: str) -> bool:
    """A card number's shape: `PAN_DIGITS` and the Luhn check. The same rule as the dbt `no_unmasked_pan` test (the
    `could_be_pan` macro)."""
    return _PAN_DIGITS.fullmatch(digits) is not None and luhn_ok(digits)


def _masker(fill: str):
    def mask(m: re.Match) -> str:
        s = m.group(0)
        if not could_be_pan(s):
            return s
        middle = fill * (len(s) - 10)
        if fill.isdigit() and luhn_ok(s[:6] + middle + s[-4:]):
            middle = middle[:-1] + str((int(fill) + 1) % 10)  # one digit off by one breaks any Luhn sum
        return s[:6] + middle + s[-4:]

    return mask


def mask_pans(text: str, fill: str = "*") -> str:
    """Mask every 13-19 digit run that could be a card number (`could_be_pan`) to its first 6 and last 4 digits.

    `fill` replaces the digits in between. A digit fill ("0") keeps the run a run of digits of the same length, so a
    strict pattern such as `^\\d{14}$` judges the masked text as it judged the original (a Luhn-valid 14-digit
    timestamp stays a timestamp); the result is made to fail the Luhn check, so it never reads as a card number."""
    return PAN_CANDIDATE.sub(_masker(fill), text)


def mask_pans_array(arr: pa.Array | pa.ChunkedArray, fill: str = "*") -> pa.Array | pa.ChunkedArray:
    """Vectorised: only the distinct values that contain a candidate digit run go through Python."""
    if len(arr) == 0:
        return arr
    hit = pc.fill_null(pc.match_substring_regex(arr, r"(^|[^0-9A-Za-z])\d{13,19}([^0-9A-Za-z]|$)"), False)
    if not pc.any(hit).as_py():
        return arr
    if isinstance(arr, pa.ChunkedArray):
        arr, hit = arr.combine_chunks(), hit.combine_chunks()
    suspects = arr.filter(hit)
    distinct = pc.unique(suspects)
    masked = pa.array([mask_pans(v, fill) for v in distinct.to_pylist()], type=arr.type)
    if masked.equals(distinct):
        return arr  # digit runs, but none a card number
    return pc.replace_with_mask(arr, hit, masked.take(pc.index_in(suspects, value_set=distinct)))
