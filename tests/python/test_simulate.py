"""Tests of the payments-world simulator (scripts/tally/simulate.py).

They read the files a small simulated world writes (see conftest.py) the way a loader would: by the
formats in shared/channel-formats.md, with integer/decimal arithmetic only. Headers are spelled out here from
the format notes, not imported from the simulator, so a drift in the writer shows up as a failure.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import json
import re
import zipfile
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pytest
from tally.simulate import (
    ANOMALY_OUTCOMES,
    CHANNEL_RATE_BP,
    FEE_PLAN_MIN_FEN,
    FEE_PLAN_RATES_BP,
    WorldParams,
    build_world,
    merchant_directory,
    simulate,
)

WECHAT_ALL_HEADER = (
    "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,"
    "应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,"
    "手续费,费率,订单金额,申请退款金额,费率备注"
).split(",")
WECHAT_LEGACY_HEADER = (
    "交易时间,公众账号ID,商户号,子商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,"
    "总金额,企业红包金额,微信退款单号,商户退款单号,退款金额,企业红包退款金额,退款类型,退款状态,商品名称,商户数据包,"
    "手续费,费率"
).split(",")
WECHAT_SUMMARY_HEADER = {
    27: ("总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,"
         "订单总金额,申请退款总金额").split(","),
    24: "总交易单数,总交易额,总退款金额,总企业红包退款金额,手续费总金额".split(","),
}
# Summary column -> the detail column it totals (both layouts).
WECHAT_TOTALS = {
    "应结订单总金额": "应结订单金额",
    "退款总金额": "退款金额",
    "充值券退款总金额": "充值券退款金额",
    "手续费总金额": "手续费",
    "订单总金额": "订单金额",
    "申请退款总金额": "申请退款金额",
    "总交易额": "总金额",
    "总退款金额": "退款金额",
    "总企业红包退款金额": "企业红包退款金额",
}
ALIPAY_HEADER = (
    "支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,对方账户,订单金额（元）,"
    "商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,商家优惠（元）,券核销金额（元）,券名称,"
    "商家红包消费金额（元）,卡消费金额（元）,退款批次号/请求号,服务费（元）,分润（元）,备注"
).split(",")
ALIPAY_ID_COLUMNS = ("支付宝交易号", "商户订单号", "业务类型", "对方账户")
BANK_HEADER = (
    "交易日期,交易时间,记账日期,借方发生额,贷方发生额,余额,对方户名,对方账号,对方开户行,摘要,附言,交易流水号"
).split(",")
INTERNAL_HEADERS = {
    "payments": "order_id,merchant_id,channel,channel_serial,amount_fen,currency,status,created_at,paid_at,"
    "payer_id,subject,biz_type",
    "refunds": "refund_id,order_id,merchant_id,channel,amount_fen,currency,status,requested_at,succeeded_at,"
    "refund_no",
    "payouts": "payout_id,merchant_id,amount_fen,currency,status,account_no,account_name,created_at,"
    "updated_at,settlement_batch_id,biz_type",
    "recharges": "recharge_id,merchant_id,amount_fen,currency,status,payer_name,payer_account,remark_code,"
    "applied_at",
}
ZM_LINE_BYTES = 607
ONE_DAY = dt.timedelta(days=1)


# ----------------------------------------------------------------------------------------------------
# Small readers
# ----------------------------------------------------------------------------------------------------


def _fen(text: str) -> int:
    """Yuan text ('1,234.50', '-0.18000') to integer fen, exactly; fractions of a fen fail."""
    value = Decimal(text.replace(",", "")) * 100
    assert value == value.to_integral_value(), f"not a whole fen: {text!r}"
    return int(value)


def _bill_date(path: Path) -> dt.date:
    """The bill date in a channel file name (wechat_<mch>_<yyyymmdd>_ALL.csv, <mer>_<yyyymmdd>.zip, ...)."""
    return dt.datetime.strptime(re.findall(r"_(\d{8})(?=[_.])", path.name)[-1], "%Y%m%d").date()


def _landing_date(path: Path) -> dt.date:
    """landing/<yyyy-mm-dd>/<source>/<file>: the day the file was delivered."""
    return dt.date.fromisoformat(path.parent.parent.name)


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _one(paths: list[Path]) -> Path:
    assert len(paths) == 1, paths
    return paths[0]


def _is_no_bill(path: Path) -> bool:
    return path.read_bytes().startswith(b"<xml>")


def _wechat_bills(world: Path) -> list[Path]:
    return [p for p in sorted(world.glob("landing/*/wechat/*.csv")) if not _is_no_bill(p)]


@dataclasses.dataclass
class WechatBill:
    header: list[str]
    rows: list[list[str]]  # raw cells, backticks kept
    summary_header: list[str]
    summary: list[str]

    def records(self) -> list[dict[str, str]]:
        return [{k: v[1:] for k, v in zip(self.header, row, strict=True)} for row in self.rows]

    def totals(self) -> dict[str, str]:
        return {k: v[1:] for k, v in zip(self.summary_header, self.summary, strict=True)}


def _read_wechat(path: Path) -> WechatBill:
    lines = path.read_text(encoding="utf-8").splitlines()
    return WechatBill(
        header=lines[0].split(","),
        rows=[ln.split(",") for ln in lines[1:-2]],
        summary_header=lines[-2].split(","),
        summary=lines[-1].split(","),
    )


def _zip_members(path: Path, encoding: str | None = None) -> dict[str, bytes]:
    with zipfile.ZipFile(path, metadata_encoding=encoding) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def _member(members: dict[str, bytes], suffix: str) -> bytes:
    return members[_one([n for n in members if n.endswith(suffix)])]


@dataclasses.dataclass
class AlipayDetail:
    before: list[str]  # `#` lines before the header
    header: list[str]
    rows: list[list[str]]  # csv cells, untrimmed
    after: list[str]  # lines after the details

    def records(self) -> list[dict[str, str]]:
        return [{k: v.strip("\t ") for k, v in zip(self.header, row, strict=True)} for row in self.rows]


def _read_alipay_detail(path: Path) -> AlipayDetail:
    text = _member(_zip_members(path, "gbk"), "_业务明细.csv").decode("gbk")
    lines = text.split("\r\n")
    assert lines[-1] == ""
    lines = lines[:-1]
    h = next(i for i, ln in enumerate(lines) if not ln.startswith("#"))
    end = next(i for i in range(h + 1, len(lines)) if lines[i].startswith("#"))
    return AlipayDetail(
        before=lines[:h],
        header=lines[h].split(","),
        rows=list(csv.reader(lines[h + 1 : end])),
        after=lines[end:],
    )


def _alipay_summary_total(path: Path) -> dict[str, str]:
    text = _member(_zip_members(path, "gbk"), "_业务明细(汇总).csv").decode("gbk")
    rows = [r for r in csv.reader(io.StringIO(text)) if r and not r[0].startswith("#")]
    header, total = rows[0], _one([r for r in rows[1:] if r[0].startswith("合计")])
    return dict(zip(header, total, strict=True))


def _zm_name(path: Path) -> str:
    mer = path.name.split("_")[0]
    return f"INN{_bill_date(path):%y%m%d}88ZM_{mer}"


def _zm_lines(path: Path) -> list[bytes]:
    data = _zip_members(path)[_zm_name(path)]
    lines = data.split(b"\r\n")
    assert lines[-1] == b""
    return lines[:-1]


def _signed(field: bytes) -> int:
    """A UnionPay C/D amount as the merchant sees it: C (credited) positive, D (debited) negative."""
    sign = {b"C": 1, b"D": -1}[field[:1]]
    return sign * int(field[1:])


def _internal(world: Path, name: str) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    for path in sorted(world.glob(f"landing/*/internal/internal_{name}_*.csv")):
        with path.open(encoding="utf-8", newline="") as f:
            rows.extend(csv.DictReader(f))
    return rows


def _internal_payments(world: Path) -> dict[str, dict[str, str]]:
    rows = _internal(world, "payments")
    by_id = {r["order_id"]: r for r in rows}
    assert len(by_id) == len(rows), "order ids repeat across internal payment dumps"
    return by_id


def _truth(world: Path) -> list[dict]:
    text = (world / "ground_truth" / "anomalies.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines()]


def _truth_of(world: Path, kind: str) -> list[dict]:
    found = [t for t in _truth(world) if t["kind"] == kind]
    assert found, f"no {kind} anomaly in the world"
    return found


# ----------------------------------------------------------------------------------------------------
# One normalised row per channel bill line, for the cross-file checks
# ----------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class BillLine:
    path: Path
    channel: str
    kind: str  # "pay" or "refund"
    order_id: str
    refund_id: str
    serial: str  # the channel's id of the payment (refund rows: of the original payment)
    amount_fen: int  # signed from the merchant's side: refunds negative
    fee_fen: int  # fee charged positive, fee given back negative
    status: str
    event: dt.datetime


def _wechat_lines(path: Path) -> list[BillLine]:
    out = []
    for r in _read_wechat(path).records():
        pay = r["交易状态"] == "SUCCESS"
        out.append(
            BillLine(
                path=path,
                channel="wechat",
                kind="pay" if pay else "refund",
                order_id=r["商户订单号"],
                refund_id="" if pay else r["商户退款单号"],
                serial=r["微信订单号"],
                amount_fen=_fen(r.get("应结订单金额", r.get("总金额", ""))) if pay else -_fen(r["退款金额"]),
                fee_fen=_fen(r["手续费"]),
                status=r["交易状态"] if pay else r["退款状态"],
                event=dt.datetime.fromisoformat(r["交易时间"]),
            )
        )
    return out


def _alipay_lines(path: Path) -> list[BillLine]:
    return [
        BillLine(
            path=path,
            channel="alipay",
            kind="pay" if r["业务类型"] == "交易" else "refund",
            order_id=r["商户订单号"],
            refund_id=r["退款批次号/请求号"],
            serial=r["支付宝交易号"],
            amount_fen=_fen(r["商家实收（元）"]),
            fee_fen=-_fen(r["服务费（元）"]),
            status="",
            event=dt.datetime.fromisoformat(r["完成时间"]),
        )
        for r in _read_alipay_detail(path).records()
    ]


def _unionpay_lines(path: Path) -> list[BillLine]:
    out = []
    for ln in _zm_lines(path):
        pay = ln[215:217] == b"01"
        order_field = ln[112:144].decode().strip()
        out.append(
            BillLine(
                path=path,
                channel="unionpay",
                kind="pay" if pay else "refund",
                order_id=order_field if pay else ln[476:508].decode().strip(),
                refund_id="" if pay else order_field,
                serial=(ln[87:108] if pay else ln[271:292]).decode(),
                amount_fen=int(ln[66:78]) * (1 if pay else -1),
                fee_fen=-_signed(ln[166:179]),
                status="",
                event=dt.datetime.strptime(ln[87:101].decode(), "%Y%m%d%H%M%S"),
            )
        )
    return out


def _bill_lines(world: Path, current_only: bool = True) -> list[BillLine]:
    """Every line of every channel bill; by default without duplicate deliveries and superseded versions."""
    reissued = world.glob("landing/*/wechat/*.reissued.csv")
    superseded = {p.name.replace(".reissued.csv", ".csv") for p in reissued}
    lines: list[BillLine] = []
    for path in _wechat_bills(world):
        if not (current_only and path.name in superseded):
            lines += _wechat_lines(path)
    for path in sorted(world.glob("landing/*/alipay/*.csv.zip")):
        lines += _alipay_lines(path)
    for path in sorted(world.glob("landing/*/unionpay/*.zip")):
        if not (current_only and ".copy." in path.name):
            lines += _unionpay_lines(path)
    return lines


def _payment_lines(world: Path) -> dict[str, list[BillLine]]:
    by_order: dict[str, list[BillLine]] = defaultdict(list)
    for line in _bill_lines(world):
        if line.kind == "pay":
            by_order[line.order_id].append(line)
    return by_order


def _expected_fee(channel: str, amount_fen: int) -> int:
    """Channel cost at the channel's rate, half-up to the fen."""
    return (amount_fen * CHANNEL_RATE_BP[channel] + 5000) // 10000


# ----------------------------------------------------------------------------------------------------
# 1. Determinism
# ----------------------------------------------------------------------------------------------------


def test_same_seed_gives_identical_bytes(world, world_params, tmp_path):
    simulate(world_params, tmp_path / "again")
    first, again = _tree(world), _tree(tmp_path / "again")
    assert sorted(first) == sorted(again)
    assert "ground_truth/anomalies.jsonl" in first
    assert any(name.endswith(".zip") for name in first)
    assert [name for name in first if first[name] != again[name]] == []


def test_different_seed_gives_different_bytes(world, world_params, tmp_path):
    simulate(dataclasses.replace(world_params, seed=world_params.seed + 1), tmp_path / "other")
    first, other = _tree(world), _tree(tmp_path / "other")
    assert first["ground_truth/anomalies.jsonl"] != other["ground_truth/anomalies.jsonl"]
    for name in first.keys() & other.keys():
        if "/internal/internal_payments_" in name or name.endswith(".zip"):
            assert first[name] != other[name], name


# ----------------------------------------------------------------------------------------------------
# 2. WeChat trade bills
# ----------------------------------------------------------------------------------------------------


def test_wechat_bill_layout(world):
    bills = _wechat_bills(world)
    assert bills
    for path in bills:
        bill = _read_wechat(path)
        assert bill.header in (WECHAT_ALL_HEADER, WECHAT_LEGACY_HEADER), path
        assert bill.summary_header == WECHAT_SUMMARY_HEADER[len(bill.header)], path
        assert len(bill.summary) == len(bill.summary_header), path
        assert all(cell.startswith("`") for cell in bill.summary), path
        for row in bill.rows:
            assert len(row) == len(bill.header), (path, row)
            assert all(cell.startswith("`") for cell in row), (path, row)


def test_wechat_summary_matches_details(world):
    for path in _wechat_bills(world):
        bill = _read_wechat(path)
        records, totals = bill.records(), bill.totals()
        assert int(totals["总交易单数"]) == len(records), path
        for total_col, detail_col in WECHAT_TOTALS.items():
            if total_col in totals:
                assert _fen(totals[total_col]) == sum(_fen(r[detail_col]) for r in records), (path, total_col)


def test_wechat_legacy_layout_goes_to_legacy_merchants(world, world_params):
    merchants = build_world(world_params)["merchants"].to_pylist()
    legacy = {m["wechat_mch_id"] for m in merchants if m["wechat_legacy"]}
    assert merchants[3]["wechat_mch_id"] in legacy
    with_legacy_header = {p.name.split("_")[1] for p in _wechat_bills(world)
                          if _read_wechat(p).header == WECHAT_LEGACY_HEADER}
    assert with_legacy_header == legacy


def test_bill_lines_fall_on_their_bill_day(world):
    cutoff_shift = {"wechat": dt.timedelta(0), "alipay": dt.timedelta(0), "unionpay": dt.timedelta(hours=1)}
    for line in _bill_lines(world, current_only=False):
        assert (line.event + cutoff_shift[line.channel]).date() == _bill_date(line.path), line


# ----------------------------------------------------------------------------------------------------
# 3. Alipay
# ----------------------------------------------------------------------------------------------------


def _alipay_zips(world: Path) -> list[Path]:
    paths = sorted(world.glob("landing/*/alipay/*.csv.zip"))
    assert paths
    return paths


def test_alipay_zip_members_are_gbk(world):
    for path in _alipay_zips(world):
        stem = path.name.removesuffix(".csv.zip")
        with zipfile.ZipFile(path, metadata_encoding="gbk") as zf:
            # Raw GBK names, without the UTF-8 flag (bit 11), as Chinese Windows tools write them.
            assert all(info.flag_bits & 0x800 == 0 for info in zf.infolist()), path
            names = zf.namelist()
            assert sorted(names) == sorted([f"{stem}_业务明细.csv", f"{stem}_业务明细(汇总).csv"]), path
            for name in names:
                zf.read(name).decode("gbk", errors="strict")


def test_alipay_detail_layout(world):
    quoted_comma = False
    for path in _alipay_zips(world):
        detail = _read_alipay_detail(path)
        assert len(detail.before) == 4 and all(ln.startswith("#") for ln in detail.before), path
        assert detail.header == ALIPAY_HEADER, path
        assert detail.after and all(ln.startswith("#") for ln in detail.after), path
        for row in detail.rows:
            assert len(row) == len(ALIPAY_HEADER), (path, row)
            cells = dict(zip(ALIPAY_HEADER, row, strict=True))
            assert all(cells[col].endswith("\t") for col in ALIPAY_ID_COLUMNS), (path, row)
            quoted_comma |= "," in cells["商品名称"]
    assert quoted_comma, "no 商品名称 with a comma: the csv quoting is never exercised"


ALIPAY_CONTROL_LINE = re.compile(
    r"#(交易|退款)合计：(\d+)笔，商家实收(?:退款)?共(-?\d+\.\d{2})元，商家优惠(?:退款)?共0\.00元"
)


def _alipay_control_lines(after: list[str]) -> dict[str, tuple[int, int]]:
    """#交易合计 / #退款合计 -> (count, 商家实收 in fen)."""
    out = {}
    for ln in after:
        m = re.fullmatch(ALIPAY_CONTROL_LINE, ln)
        if m:
            out[m.group(1)] = (int(m.group(2)), _fen(m.group(3)))
    return out


def test_alipay_control_totals_match_details(world):
    for path in _alipay_zips(world):
        detail = _read_alipay_detail(path)
        records = detail.records()
        control = _alipay_control_lines(detail.after)
        assert sorted(control) == ["交易", "退款"], (path, detail.after)
        for kind, (count, received) in control.items():
            rows = [r for r in records if r["业务类型"] == kind]
            assert count == len(rows), (path, kind)
            assert received == sum(_fen(r["商家实收（元）"]) for r in rows), (path, kind)

        total = _alipay_summary_total(path)
        assert int(total["交易订单总笔数"]) == control["交易"][0], path
        assert int(total["退款订单总笔数"]) == control["退款"][0], path
        received = sum(_fen(r["商家实收（元）"]) for r in records)
        fees = sum(_fen(r["服务费（元）"]) for r in records)
        assert _fen(total["商家实收（元）"]) == received, path
        assert _fen(total["服务费（元）"]) == fees, path
        assert _fen(total["实收净额（元）"]) == received + fees, path


# ----------------------------------------------------------------------------------------------------
# 4. UnionPay ZM
# ----------------------------------------------------------------------------------------------------


def test_unionpay_zm_layout(world):
    paths = sorted(world.glob("landing/*/unionpay/*.zip"))
    assert paths
    for path in paths:
        assert _zm_name(path) in _zip_members(path), path
        mer = path.name.split("_")[0].encode()
        for ln in _zm_lines(path):
            assert len(ln) == ZM_LINE_BYTES, (path, len(ln))
            assert ln[66:78].isdigit(), ln[66:78]
            assert re.fullmatch(rb"[CD]\d{12}", ln[166:179]), ln[166:179]
            dt.datetime.strptime(ln[87:101].decode(), "%Y%m%d%H%M%S")
            assert ln[87:108].isdigit(), ln[87:108]
            assert ln[293:308] == mer, ln[293:308]
            assert ln[215:217] in (b"01", b"04"), ln[215:217]


def test_unionpay_settle_amount_is_amount_less_fee(world):
    for path in sorted(world.glob("landing/*/unionpay/*.zip")):
        for ln in _zm_lines(path):
            amount = int(ln[66:78]) * (1 if ln[215:217] == b"01" else -1)
            assert _signed(ln[180:193]) == amount + _signed(ln[166:179]), ln[:200]
            assert ln[374:387] == ln[180:193], "清算净额 differs from 结算金额"


# ----------------------------------------------------------------------------------------------------
# 5. Bank: payout result and account statement
# ----------------------------------------------------------------------------------------------------


def _payout_files(world: Path) -> list[Path]:
    paths = sorted(world.glob("landing/*/bank/PAYOUT_*_RESULT.txt"))
    assert paths
    return paths


def test_payout_result_header_matches_rows(world):
    for path in _payout_files(world):
        lines = path.read_bytes().decode("gbk").splitlines()
        assert lines[0].startswith("H|"), path
        head = lines[0].split("|")
        rows = [ln.split("|") for ln in lines[1:]]
        assert all(r[0] == "D" and len(r) == 12 for r in rows), path
        assert [int(r[1]) for r in rows] == list(range(1, len(rows) + 1)), path
        assert head[2] == f"{_bill_date(path):%Y%m%d}"

        def count_and_sum(status: str | None, rows=rows) -> list[int]:
            picked = [r for r in rows if status is None or r[7] == status]
            return [len(picked), sum(int(r[5]) for r in picked)]

        expected = count_and_sum(None) + count_and_sum("S") + count_and_sum("F")
        assert [int(x) for x in head[3:]] == expected, path


def test_payout_result_uses_one_line_ending(world):
    for path in _payout_files(world):
        data = path.read_bytes()
        assert data.count(b"\n") == data.count(b"\r\n"), path


def _statements(world: Path) -> list[Path]:
    paths = sorted(world.glob("landing/*/bank/bank_statement_*.csv"))
    assert paths
    return paths


@dataclasses.dataclass
class Statement:
    head: list[list[str]]
    rows: list[dict[str, str]]
    total: list[str]


def _read_statement(path: Path) -> Statement:
    text = path.read_bytes().decode("gbk")
    assert text.endswith("\r\n")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    details = [dict(zip(BANK_HEADER, r, strict=True)) for r in rows[3:-1]]
    return Statement(head=rows[:3], rows=details, total=rows[-1])


def _money(cell: str) -> int:
    return _fen(cell) if cell else 0


def test_bank_statement_layout_and_totals(world):
    for path in _statements(world):
        d = _bill_date(path)
        st = _read_statement(path)
        assert st.head[0][:2] == ["账号:", path.name.split("_")[2]], path
        assert st.head[1] == ["起始日期:", d.isoformat(), "终止日期:", d.isoformat()], path
        assert st.head[2] == BANK_HEADER, path
        assert st.rows, path
        assert st.total[0] == "合计" and len(st.total) == len(BANK_HEADER), path
        assert _fen(st.total[3]) == sum(_money(r["借方发生额"]) for r in st.rows), path
        assert _fen(st.total[4]) == sum(_money(r["贷方发生额"]) for r in st.rows), path
        for r in st.rows:
            assert r["交易日期"] == d.isoformat(), (path, r)
            assert (_money(r["借方发生额"]) == 0) != (_money(r["贷方发生额"]) == 0), (path, r)


def test_bank_statement_running_balance(world):
    for path in _statements(world):
        rows = _read_statement(path).rows
        for prev, row in zip(rows, rows[1:], strict=False):
            moved = _money(row["贷方发生额"]) - _money(row["借方发生额"])
            assert _fen(row["余额"]) == _fen(prev["余额"]) + moved, (path, row)


def test_bank_statement_balance_carries_over_days(world):
    statements = [_read_statement(p).rows for p in _statements(world)]
    for yesterday, today in zip(statements, statements[1:], strict=False):
        first = today[0]
        opening = _fen(first["余额"]) - _money(first["贷方发生额"]) + _money(first["借方发生额"])
        assert opening == _fen(yesterday[-1]["余额"])


# ----------------------------------------------------------------------------------------------------
# 6. Internal dumps
# ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(INTERNAL_HEADERS))
def test_internal_dumps(world, world_params, name):
    for d in world_params.dates:
        path = world / f"landing/{d + ONE_DAY:%Y-%m-%d}/internal/internal_{name}_{d:%Y%m%d}.csv"
        with path.open(encoding="utf-8", newline="") as f:
            rows = list(csv.reader(f))
        assert ",".join(rows[0]) == INTERNAL_HEADERS[name], path
        # payouts pay settlement batches T+N business days after clearing: nothing is due on the first day
        assert len(rows) > 1 or (name == "payouts" and d == world_params.start_date), path
        for row in rows[1:]:
            assert len(row) == len(rows[0]), (path, row)
            assert re.fullmatch(r"\d+", row[rows[0].index("amount_fen")]), (path, row)


# ----------------------------------------------------------------------------------------------------
# 7. Ground truth, checked against the files
# ----------------------------------------------------------------------------------------------------


def test_ground_truth_covers_every_anomaly_kind(world, world_params):
    # The small world keeps every default anomaly rate and switch, and runs 3 days (the late file needs 3),
    # so every kind the simulator knows can and must be injected.
    defaults = WorldParams()
    for f in dataclasses.fields(WorldParams):
        if f.name.startswith("rate_") or isinstance(f.default, bool):
            assert getattr(world_params, f.name) == getattr(defaults, f.name), f.name
    assert world_params.days >= 3

    truth = _truth(world)
    for t in truth:
        assert (t["expected_break_type"], t["expected_disposition"]) == ANOMALY_OUTCOMES[t["kind"]], t
        dt.date.fromisoformat(t["bill_date"])
    assert {t["kind"] for t in truth} == set(ANOMALY_OUTCOMES)


def test_channel_only_orders_are_missing_internally(world):
    internal, bills = _internal_payments(world), _payment_lines(world)
    for t in _truth_of(world, "channel_only"):
        assert t["key"] not in internal, t
        assert [ln.channel for ln in bills[t["key"]]] == [t["channel"]], t


def test_internal_only_orders_are_missing_from_every_bill(world):
    internal = _internal_payments(world)
    billed = {ln.order_id for ln in _bill_lines(world, current_only=False)}
    for t in _truth_of(world, "internal_only"):
        assert internal[t["key"]]["channel"] == t["channel"], t
        assert t["key"] not in billed, t


def test_duplicate_channel_rows_appear_twice_in_one_bill(world):
    internal, bills = _internal_payments(world), _payment_lines(world)
    for t in _truth_of(world, "duplicate_channel_row"):
        lines = bills[t["key"]]
        assert len(lines) == 2 and lines[0] == lines[1], t  # same file, same content
        assert lines[0].channel == t["channel"], t
        assert t["key"] in internal, t


def test_internal_processing_orders(world):
    internal, bills = _internal_payments(world), _payment_lines(world)
    for t in _truth_of(world, "internal_processing"):
        assert internal[t["key"]]["status"] == "PROCESSING", t
        assert internal[t["key"]]["channel_serial"] == "", t
        (line,) = bills[t["key"]]  # the channel has it paid
        assert line.channel == t["channel"], t


def test_amount_mismatch_orders(world):
    internal, bills = _internal_payments(world), _payment_lines(world)
    for t in _truth_of(world, "amount_mismatch"):
        (line,) = bills[t["key"]]
        delta = line.amount_fen - int(internal[t["key"]]["amount_fen"])
        assert delta != 0 and delta == t["amount_fen"], t


def test_fee_mismatch_orders(world):
    internal, bills = _internal_payments(world), _payment_lines(world)
    for t in _truth_of(world, "fee_mismatch"):
        (line,) = bills[t["key"]]
        assert line.amount_fen == int(internal[t["key"]]["amount_fen"]), t
        assert line.fee_fen != _expected_fee(line.channel, line.amount_fen), t


def test_ordinary_payments_carry_the_channel_fee(world):
    anomalous = {t["key"] for t in _truth(world) if t["kind"] == "fee_mismatch"}
    checked = 0
    for order_id, lines in _payment_lines(world).items():
        if order_id not in anomalous:
            for line in lines:
                assert line.fee_fen == _expected_fee(line.channel, line.amount_fen), line
                checked += 1
    assert checked > 1000


PAYMENT_KINDS_IN_BILLS = (
    "cross_midnight",
    "genuine_twin",
    "internal_processing",
    "channel_only",
    "amount_mismatch",
    "fee_mismatch",
    "duplicate_channel_row",
)


@pytest.mark.parametrize("kind", PAYMENT_KINDS_IN_BILLS)
def test_payment_anomalies_sit_in_their_channel_bill(world, kind):
    bills = _payment_lines(world)
    for t in _truth_of(world, kind):
        lines = bills[t["key"]]
        assert lines, t
        for line in lines:
            where = (line.channel, str(_bill_date(line.path)), line.serial)
            assert where == (t["channel"], t["bill_date"], t["ref"]), t


def test_frozen_wechat_refunds_show_processing(world):
    lines = _bill_lines(world)
    refunds = {ln.refund_id: ln for ln in lines if ln.kind == "refund" and ln.channel == "wechat"}
    frozen = [t for t in _truth_of(world, "refund_frozen_processing") if t["channel"] == "wechat"]
    assert frozen
    for t in frozen:
        assert refunds[t["key"]].status == "PROCESSING", t
    assert {ln.status for ln in refunds.values()} == {"SUCCESS", "PROCESSING"}


def test_refund_rows_match_internal_refunds(world):
    internal = {r["refund_id"]: r for r in _internal(world, "refunds")}
    billed = [ln for ln in _bill_lines(world) if ln.kind == "refund"]
    assert billed
    for line in billed:
        row = internal[line.refund_id]
        assert (row["order_id"], row["channel"]) == (line.order_id, line.channel), line
        assert -line.amount_fen == int(row["amount_fen"]), line
    assert len({ln.refund_id for ln in billed}) == len(internal)


@pytest.mark.parametrize(
    "channel",
    [
        "wechat",
        "unionpay",
        "alipay",
    ],
)
def test_refund_rows_carry_their_payments_channel_serial(world, channel):
    internal = _internal_payments(world)
    refunds = [ln for ln in _bill_lines(world) if ln.kind == "refund" and ln.channel == channel]
    assert refunds
    wrong = [ln for ln in refunds if ln.serial != internal[ln.order_id]["channel_serial"]]
    assert wrong == []


# ----------------------------------------------------------------------------------------------------
# 8. File-level anomalies
# ----------------------------------------------------------------------------------------------------


def test_empty_day_is_a_no_bill_xml(world):
    (t,) = _truth_of(world, "empty_day")
    d = dt.date.fromisoformat(t["bill_date"])
    path = _one(sorted(world.glob(f"landing/*/wechat/wechat_{t['key']}_{d:%Y%m%d}_ALL*.csv")))
    body = path.read_text(encoding="utf-8")
    assert body.startswith("<xml>") and "No Bill Exist" in body and "FAIL" in body
    assert _landing_date(path) == d + ONE_DAY


def test_duplicate_file_is_a_byte_identical_copy(world):
    (t,) = _truth_of(world, "duplicate_file")
    d = dt.date.fromisoformat(t["bill_date"])
    original = _one(sorted(world.glob(f"landing/*/unionpay/{t['key']}_{d:%Y%m%d}.zip")))
    copy = _one(sorted(world.glob(f"landing/*/unionpay/{t['key']}_{d:%Y%m%d}.copy.zip")))
    assert copy.read_bytes() == original.read_bytes()
    assert _landing_date(copy) > _landing_date(original)


def test_reissued_file_corrects_its_original(world):
    (t,) = _truth_of(world, "reissued_file")
    d = dt.date.fromisoformat(t["bill_date"])
    original = _one(sorted(world.glob(f"landing/*/wechat/wechat_{t['key']}_{d:%Y%m%d}_ALL.csv")))
    reissued = _one(sorted(world.glob(f"landing/*/wechat/wechat_{t['key']}_{d:%Y%m%d}_ALL.reissued.csv")))
    assert _landing_date(reissued) > _landing_date(original)
    old, new = _read_wechat(original), _read_wechat(reissued)
    assert old.header == new.header and len(old.rows) == len(new.rows)
    changed = [i for i, (a, b) in enumerate(zip(old.rows, new.rows, strict=True)) if a != b]
    assert len(changed) == 1
    assert old.summary != new.summary


def test_late_alipay_file_arrives_two_days_late(world):
    (t,) = _truth_of(world, "late_file")
    assert t["channel"] == "alipay"
    d = dt.date.fromisoformat(t["bill_date"])
    late = _one(sorted(world.glob(f"landing/*/alipay/{t['key']}0156_{d:%Y%m%d}.csv.zip")))
    assert _landing_date(late) == d + 3 * ONE_DAY
    assert t["suspense_until"] == _landing_date(late).isoformat()
    on_time = [p for p in world.glob(f"landing/*/alipay/*_{d:%Y%m%d}.csv.zip") if p != late]
    assert on_time and all(_landing_date(p) == d + ONE_DAY for p in on_time)


def test_merchants_seed_is_the_simulators_merchant_directory():
    seed = Path(__file__).resolve().parents[2] / "seeds" / "merchants.csv"
    with open(seed, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    want = [{k: str(v) for k, v in r.items()} for r in merchant_directory(len(rows))]
    assert len(rows) == 100
    assert rows == want


def test_fee_plans_seed_has_the_simulators_rates():
    seed = Path(__file__).resolve().parents[2] / "seeds" / "merchant_fee_plans.csv"
    with open(seed, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    got = {(r["fee_plan_id"], r["channel"]): (int(r["rate_bp"]), int(r["min_fen"]), int(r["fixed_fen"])) for r in rows}
    want = {(plan, ch): (bp, FEE_PLAN_MIN_FEN[plan], 0) for plan, rates in FEE_PLAN_RATES_BP.items()
            for ch, bp in rates.items()}
    assert got == want
