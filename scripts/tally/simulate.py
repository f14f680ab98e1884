"""Deterministic payments-world simulator.

Writes what a payment company sees each morning, in the channels' real formats (shared/channel-formats.md):
internal MySQL-style dumps, WeChat Pay trade bills (ALL, incl. the legacy 24-column layout), Alipay trade bills
(GBK CSV inside a zip, `#` lines, trailing TABs), UnionPay ZM fixed-width files (GBK, fen, C/D signs), a bank
payout result file and a bank account statement. Alongside it writes the ground truth: every injected anomaly, the
lines it touches and the reconciliation outcome it must produce.

Everything random comes from one numpy Generator seeded by `seed`; formatting is set-based DuckDB SQL over Arrow
tables, so 1M trades a day is a few seconds, not a Python loop per row. Same seed, same parameters -> the same bytes.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

CHANNELS = ("wechat", "alipay", "unionpay")
CHANNEL_WEIGHTS = (0.5, 0.3, 0.2)
# Channel cost in basis points, half-up to the fen per transaction (channel-formats.md §1.4 item 7).
CHANNEL_RATE_BP = {"wechat": 60, "alipay": 60, "unionpay": 50}
# Bill-day cut-off offsets: a line belongs to the bill of date(time + offset). UnionPay cuts at 23:00.
CHANNEL_CUTOFF_SHIFT_S = {"wechat": 0, "alipay": 0, "unionpay": 3600}
OUR_BANK_ACCOUNT = "6214830112345678"
OUR_COMPANY = "杭州示例支付科技有限公司"
PAYOUT_ACCOUNT_NO = "PAY0001"
SETTLEMENT_PAYERS = {
    "wechat": ("财付通支付科技有限公司", "1100000000000001"),
    "alipay": ("支付宝（中国）网络技术有限公司", "1100000000000002"),
    "unionpay": ("中国银联股份有限公司", "1100000000000003"),
}
# Fixed bytes in zip members so the same world is byte-identical on every run.
ZIP_DATE_TIME = (2024, 1, 1, 0, 0, 0)

# Anomaly kinds, the break each must produce and the proposed disposition (ground truth vocabulary).
ANOMALY_OUTCOMES = {
    "cross_midnight": ("matched", None),
    "genuine_twin": ("matched", None),
    "internal_processing": ("status_mismatch", "manual_review"),
    "refund_frozen_processing": ("status_mismatch", "manual_review"),
    "internal_only": ("internal_only", "chase_funds"),
    "channel_only": ("channel_only", "refund_original_route"),
    "amount_mismatch": ("amount_mismatch", "manual_review"),
    "fee_mismatch": ("fee_mismatch", "chase_funds"),
    "duplicate_channel_row": ("duplicate", "ignore_out_of_system"),
    "late_file": ("matched", None),
    "duplicate_file": ("file_duplicate", None),
    "reissued_file": ("file_superseded", None),
    "empty_day": ("empty_day", None),
    "recharge_remark_missing": ("matched", None),
    "recharge_remark_mistyped": ("matched", None),
    "recharge_unclaimed": ("channel_only", "refund_original_route"),
    "recharge_no_credit": ("internal_only", "ignore_out_of_system"),
    "payout_returned": ("matched", None),
    "payout_processing_then_final": ("matched", None),
    # a merchant's withdrawal (提现) from its prepaid balance that the bank refused, or paid and then returned (退票):
    # both sides agree, the ledger unfreezes the balance
    "withdrawal_failed": ("matched", None),
    "withdrawal_returned": ("matched", None),
}


@dataclasses.dataclass(frozen=True)
class WorldParams:
    seed: int = 42
    days: int = 3
    merchants: int = 4
    daily_volume: int = 2000
    start_date: dt.date = dt.date(2024, 3, 4)
    # Per-payment anomaly rates; each picks a disjoint set of payments.
    rate_cross_midnight: float = 0.002
    rate_internal_processing: float = 0.002
    rate_internal_only: float = 0.002
    rate_channel_only: float = 0.002
    rate_amount_mismatch: float = 0.002
    rate_fee_mismatch: float = 0.002
    rate_duplicate_channel_row: float = 0.002
    rate_genuine_twin: float = 0.002
    rate_refund: float = 0.05
    rate_refund_frozen: float = 0.05  # share of refunds frozen at PROCESSING in the bill
    rate_payout_fail: float = 0.05
    rate_payout_processing: float = 0.05
    rate_payout_returned: float = 0.05
    recharges_per_day: int = 30
    rate_recharge_remark_missing: float = 0.1
    rate_recharge_remark_mistyped: float = 0.1
    # Online recharges: payments (through a channel) whose purpose is topping up the merchant's prepaid balance.
    rate_online_recharge: float = 0.01
    # Withdrawals (提现) from the prepaid balance, paid out through the bank payout channel.
    rate_withdrawal_fail: float = 0.1
    rate_withdrawal_returned: float = 0.1
    # File-level anomalies (each on or off; the simulator picks where).
    duplicate_file: bool = True
    reissued_file: bool = True
    empty_day: bool = True
    late_file: bool = True

    @property
    def dates(self) -> list[dt.date]:
        return [self.start_date + dt.timedelta(days=i) for i in range(self.days)]

    def to_json(self) -> dict:
        d = dataclasses.asdict(self)
        d["start_date"] = self.start_date.isoformat()
        return d


EPOCH = dt.date(1970, 1, 1)


def _day_seconds(d: dt.date) -> int:
    return (d - EPOCH).days * 86400


# ---------------------------------------------------------------------------------------------------------------
# World generation (numpy): one row per payment, refund, payout, recharge. Times are Asia/Shanghai local seconds.
# ---------------------------------------------------------------------------------------------------------------


def _pick(rng: np.random.Generator, pool: np.ndarray, rate: float, taken: np.ndarray) -> np.ndarray:
    """Pick round(rate * len(pool)) indices from pool not yet taken (at least one when rate > 0)."""
    free = pool[~taken[pool]]
    n = min(len(free), max(1 if rate > 0 else 0, int(round(rate * len(pool)))))
    chosen = np.sort(rng.choice(free, size=n, replace=False)) if n else np.array([], dtype=np.int64)
    taken[chosen] = True
    return chosen


FEE_PLANS = ("STD", "VIP", "SMB")
# What we charge merchants, basis points per channel, rounded half up per line (seeds/merchant_fee_plans.csv has the
# same rates; a test keeps them equal). STD also charges at least 1 fen per payment.
FEE_PLAN_RATES_BP = {
    "STD": {"wechat": 78, "alipay": 78, "unionpay": 60},
    "VIP": {"wechat": 65, "alipay": 65, "unionpay": 55},
    "SMB": {"wechat": 38, "alipay": 38, "unionpay": 38},
}
FEE_PLAN_MIN_FEN = {"STD": 1, "VIP": 0, "SMB": 0}
# Payment anomalies whose line still reconciles and clears (a fee mismatch is the channel's cost problem).
CLEARING_KINDS = ("", "cross_midnight", "genuine_twin", "fee_mismatch", "duplicate_channel_row")
MERCHANT_NAMES = ("星河咖啡", "云间书店", "青禾便利", "山海出行", "北辰影城", "南风外卖", "远航游戏", "拾光会员")


def merchant_directory(n: int) -> list[dict]:
    """The merchants of a world: our id, each channel's merchant id, fee plan and settlement cycle (T+N).

    `seeds/merchants.csv` is this directory for 100 merchants (a test keeps the two equal).
    """
    return [
        {
            "merchant_id": f"M{i + 1:04d}",
            "merchant_name": f"{MERCHANT_NAMES[i % len(MERCHANT_NAMES)]}{i + 1:03d}号店",
            "wechat_mch_id": f"16{1000000 + 7919 * (i + 1) % 9000000:08d}",
            "alipay_pid": f"2088{(104729 * (i + 1)) % 10**12:012d}",
            "unionpay_mer_id": f"898{(15485863 * (i + 1)) % 10**12:012d}",
            "fee_plan_id": FEE_PLANS[i % len(FEE_PLANS)],
            "settlement_cycle_days": 1 + i % 2,
        }
        for i in range(n)
    ]


def build_world(p: WorldParams) -> dict[str, pa.Table]:
    rng = np.random.default_rng(p.seed)
    n_days = p.days
    day0 = _day_seconds(p.start_date)
    world_end = day0 + n_days * 86400

    # Merchants: ids per channel; every fourth WeChat merchant still gets the legacy 24-column bill.
    m = np.arange(p.merchants)
    directory = merchant_directory(p.merchants)
    merchants = pa.table(
        {
            "merchant_idx": m,
            **{k: [row[k] for row in directory] for k in ("merchant_id", "wechat_mch_id", "alipay_pid",
                                                          "unionpay_mer_id")},
            "wechat_legacy": (m % 4 == 3),
        }
    )

    # --- payments ------------------------------------------------------------------------------------------
    n = p.daily_volume * n_days
    day_idx = np.repeat(np.arange(n_days), p.daily_volume)
    merchant_idx = rng.integers(0, p.merchants, n)
    channel_idx = rng.choice(3, size=n, p=CHANNEL_WEIGHTS)
    amount = np.clip(np.round(rng.lognormal(np.log(8000), 1.0, n)), 1, 5_000_000).astype(np.int64)
    created = day0 + day_idx * 86400 + rng.integers(0, 86400 - 120, n)
    latency = np.minimum(rng.exponential(8, n).astype(np.int64) + 1, 100)
    taken = np.zeros(n, dtype=bool)
    anomaly = np.full(n, "", dtype=object)
    not_last_day = np.flatnonzero(day_idx < n_days - 1)

    cross = _pick(rng, not_last_day, p.rate_cross_midnight, taken)
    created[cross] = day0 + (day_idx[cross] + 1) * 86400 - rng.integers(5, 40, len(cross))
    latency[cross] = 60
    anomaly[cross] = "cross_midnight"
    # UnionPay cuts its clearing day at 23:00: nothing may fall between cut-off and midnight of the last day.
    last_up = (day_idx == n_days - 1) & (channel_idx == 2)
    created[last_up] = np.minimum(created[last_up], day0 + n_days * 86400 - 3600 - 200)
    paid = created + latency

    everyone = np.arange(n)
    for kind, rate in (
        ("internal_processing", p.rate_internal_processing),
        ("internal_only", p.rate_internal_only),
        ("channel_only", p.rate_channel_only),
        ("amount_mismatch", p.rate_amount_mismatch),
        ("fee_mismatch", p.rate_fee_mismatch),
        ("duplicate_channel_row", p.rate_duplicate_channel_row),
    ):
        anomaly[_pick(rng, everyone, rate, taken)] = kind

    # Genuine twins: a second payment by the same payer, same amount, same merchant, a few seconds later.
    twins_of = _pick(rng, everyone, p.rate_genuine_twin, taken)
    n_tw = len(twins_of)
    merchant_idx = np.concatenate([merchant_idx, merchant_idx[twins_of]])
    channel_idx = np.concatenate([channel_idx, channel_idx[twins_of]])
    amount = np.concatenate([amount, amount[twins_of]])
    created = np.concatenate([created, created[twins_of] + 3])
    paid = np.concatenate([paid, paid[twins_of] + 3])
    day_idx = np.concatenate([day_idx, day_idx[twins_of]])
    anomaly[twins_of] = "genuine_twin"
    anomaly = np.concatenate([anomaly, np.full(n_tw, "genuine_twin", dtype=object)])
    payer_seq = np.concatenate([np.arange(n), twins_of])
    n_all = n + n_tw

    rate_bp = np.array([CHANNEL_RATE_BP[c] for c in CHANNELS])[channel_idx]
    fee = (amount * rate_bp + 5000) // 10000
    ch_amount = amount.copy()
    ch_fee = fee.copy()
    am = anomaly == "amount_mismatch"
    ch_amount[am] = amount[am] + rng.integers(1, 500, am.sum())
    ch_fee[am] = (ch_amount[am] * rate_bp[am] + 5000) // 10000
    fm = anomaly == "fee_mismatch"
    ch_fee[fm] = fee[fm] + rng.integers(1, 6, fm.sum())
    # Arrow strings straight from a mask: a numpy object array of them would be one Python str per payment
    internal_status = pc.if_else(pa.array(anomaly == "internal_processing"), "PROCESSING", "SUCCESS")

    payments = pa.table(
        {
            "pay_seq": np.arange(n_all),
            "payer_seq": payer_seq,
            "merchant_idx": merchant_idx,
            "channel": np.array(CHANNELS, dtype=object)[channel_idx],
            "amount_fen": amount,
            "fee_fen": fee,
            "channel_amount_fen": ch_amount,
            "channel_fee_fen": ch_fee,
            "created_s": created,
            "paid_s": paid,
            "internal_status": internal_status,
            "in_internal": anomaly != "channel_only",
            "in_channel": anomaly != "internal_only",
            "channel_copies": np.where(anomaly == "duplicate_channel_row", 2, 1),
            "anomaly": anomaly,
        }
    )

    # --- refunds: 1-3 per refunded order, partial or full, on the day of payment or up to 3 days later -----------
    eligible = np.flatnonzero((anomaly == "") & (paid < world_end - 86400 // 2))
    refunded = np.sort(rng.choice(eligible, size=int(p.rate_refund * len(eligible)), replace=False))
    per_order = np.minimum(rng.geometric(0.6, len(refunded)), 3)
    r_pay = np.repeat(refunded, per_order)
    r_k = np.concatenate([np.arange(k) for k in per_order]) if len(per_order) else np.array([], dtype=np.int64)
    r_cnt = np.repeat(per_order, per_order)
    # Split the order amount: with one refund, full or half; with several, equal parts of at most 90 %.
    r_full = rng.random(len(r_pay)) < 0.5
    r_amount = np.where(
        r_cnt == 1,
        np.where(r_full, amount[r_pay], np.maximum(amount[r_pay] // 2, 1)),
        np.maximum(amount[r_pay] * 9 // 10 // r_cnt, 1),
    ).astype(np.int64)
    delay = rng.integers(0, 4, len(r_pay)) * 86400 + 600 + r_k * 1800 + rng.integers(0, 3600, len(r_pay))
    r_requested = paid[r_pay] + delay
    keep = r_requested < world_end - 3700  # stays inside the world, clear of UnionPay's 23:00 cut-off
    r_pay, r_amount, r_requested, r_k = r_pay[keep], r_amount[keep], r_requested[keep], r_k[keep]
    r_rate = rate_bp[r_pay]
    # Fee given back proportionally, half-up to the fen.
    r_fee_back = (fee[r_pay] * r_amount * 2 + amount[r_pay]) // (2 * amount[r_pay])
    # Only WeChat's bill lists a refund that is still PROCESSING; Alipay and UnionPay list completed refunds only.
    r_frozen = (rng.random(len(r_pay)) < p.rate_refund_frozen) & (channel_idx[r_pay] == 0)
    refunds = pa.table(
        {
            "refund_seq": np.arange(len(r_pay)),
            "pay_seq": r_pay,
            "refund_no": r_k + 1,
            "amount_fen": r_amount,
            "fee_back_fen": r_fee_back,
            "rate_bp": r_rate,
            "requested_s": r_requested,
            "channel_status": np.where(r_frozen, "PROCESSING", "SUCCESS").astype(object),
            "anomaly": np.where(r_frozen, "refund_frozen_processing", "").astype(object),
        }
    )

    # --- online recharges: a merchant tops up its prepaid balance through a channel. The account system's recharge
    # order pays through the cashier like any payment, so it is a payment whose business type says so; it is never
    # refunded here. A separate random stream keeps every other row of the world as it was.
    rc_rng = np.random.default_rng(p.seed + 3)
    not_free = (anomaly != "").copy()
    not_free[r_pay] = True
    online = _pick(rc_rng, everyone, p.rate_online_recharge, not_free)
    is_recharge = np.zeros(n_all, dtype=bool)
    is_recharge[online] = True
    payments = payments.append_column("biz_type", pc.if_else(pa.array(is_recharge), "RECHARGE", "TRADE"))

    # --- offline recharges: the user applies, then wires money; the bank credit has no order id ---------------
    n_rc = p.recharges_per_day * n_days
    rc_day = np.repeat(np.arange(n_days), p.recharges_per_day)
    rc_applied = day0 + rc_day * 86400 + rng.integers(8 * 3600, 20 * 3600, n_rc)
    rc_amount = (rng.integers(1, 500, n_rc) * 10_000).astype(np.int64)  # round yuan amounts collide on purpose
    rc_taken = np.zeros(n_rc, dtype=bool)
    rc_all = np.arange(n_rc)
    rc_anomaly = np.full(n_rc, "", dtype=object)
    for kind, rate in (
        ("recharge_remark_missing", p.rate_recharge_remark_missing),
        ("recharge_remark_mistyped", p.rate_recharge_remark_mistyped),
        ("recharge_unclaimed", 1 / max(n_rc, 1)),
        ("recharge_no_credit", 1 / max(n_rc, 1)),
    ):
        rc_anomaly[_pick(rng, rc_all, rate, rc_taken)] = kind
    rc_credit_s = np.minimum(rc_applied + rng.integers(300, 3 * 3600, n_rc), day0 + (rc_day + 1) * 86400 - 1)
    recharges = pa.table(
        {
            "recharge_seq": rc_all,
            "merchant_idx": rng.integers(0, p.merchants, n_rc),
            "day_idx": rc_day,
            "applied_s": rc_applied,
            "credit_s": rc_credit_s,
            "amount_fen": rc_amount,
            "mistype_pos": rng.integers(0, 8, n_rc),
            "anomaly": rc_anomaly,
        }
    )
    return {
        "merchants": merchants,
        "payments": payments,
        "refunds": refunds,
        "recharges": recharges,
    }


# ---------------------------------------------------------------------------------------------------------------
# Formatting (DuckDB SQL). Each writer streams its file's lines to disk with `_write_lines`, an Arrow batch at a
# time and without a row loop: a file is never whole in memory (a 20M-trade payments dump is 2.9 GB).
# ---------------------------------------------------------------------------------------------------------------

_MACROS = r"""
create or replace macro yuan(f) as
    (case when f < 0 then '-' else '' end) || (abs(f) // 100)::varchar || '.' || lpad((abs(f) % 100)::varchar, 2, '0');
create or replace macro yuan5(f) as yuan(f) || '000';
create or replace macro yuan_thousands(f) as
    (case when f < 0 then '-' else '' end) || format('{:,}', abs(f) // 100) || '.'
    || lpad((abs(f) % 100)::varchar, 2, '0');
create or replace macro ts(s) as strftime(make_timestamp(s::bigint * 1000000), '%Y-%m-%d %H:%M:%S');
create or replace macro bill_day(s, shift) as (make_timestamp((s + shift)::bigint * 1000000))::date;
-- w pseudo-random-looking digits, unique per x (the last 12 digits are x itself)
create or replace macro digits(x, w) as
    right(repeat('0', 40) || ((x::bigint * 2654435761 + 97) % 99991)::varchar || lpad(x::varchar, 12, '0'), w);
create or replace macro order_id(seq) as 'ORD' || lpad(seq::varchar, 12, '0');
create or replace macro refund_id(seq) as 'RF' || lpad(seq::varchar, 12, '0');
create or replace macro payout_id(seq) as 'PO' || lpad(seq::varchar, 12, '0');
create or replace macro recharge_id(seq) as 'RC' || lpad(seq::varchar, 12, '0');
create or replace macro remark_code(seq) as 'U' || lpad(((seq * 7919 + 13) % 100000000)::varchar, 8, '0');
create or replace macro payer_account(seq) as '6222' || digits(seq + 17, 15);
create or replace macro payer_name(seq) as
    ['张伟', '王芳', '李娜', '刘洋', '陈静', '杨磊', '赵敏', '黄勇', '周杰', '吴霞'][(seq % 10) + 1]
    || ['', '（个体）', '', '', '贸易', '', '', '', '', ''][(seq // 10 % 10) + 1];
"""


def _connect(world: dict[str, pa.Table], p: WorldParams) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("set threads to 2")
    # a 20M-trade world's working tables outgrow memory: DuckDB spills them instead of taking the machine (its
    # default is 80 % of RAM, on top of the Arrow tables Python holds)
    con.execute("set memory_limit = ?", [os.environ.get("TALLY_SIM_MEMORY_LIMIT", "6GB")])
    con.execute("set temp_directory = ?", [os.path.join(tempfile.gettempdir(), f"tally-simulate-{os.getpid()}")])
    for stmt in _MACROS.split(";"):
        if stmt.strip():
            con.execute(stmt)
    for name, tbl in world.items():
        con.register(f"w_{name}", tbl)
    day0 = _day_seconds(p.start_date)
    # Channel serials and ids are derived from sequence numbers, so they are unique and deterministic.
    con.execute(
        f"""
        create temp table pay as
        select
            w.*,
            m.merchant_id, m.wechat_mch_id, m.wechat_legacy, m.alipay_pid, m.unionpay_mer_id,
            order_id(pay_seq) as order_id,
            bill_day(paid_s, case channel when 'unionpay' then 3600 else 0 end) as bill_date,
            case channel
                when 'wechat' then '4200' || digits(pay_seq, 24)
                when 'alipay' then strftime(make_timestamp(paid_s * 1000000), '%Y%m%d') || '22' || digits(pay_seq, 18)
                -- a queryId is the second plus a 7-digit number unique within that second (pay_seq mod 10^7
                -- repeated within a second past 10M payments a day)
                else strftime(make_timestamp(paid_s * 1000000), '%Y%m%d%H%M%S')
                     || lpad((row_number() over (partition by paid_s order by pay_seq))::varchar, 7, '0')
            end as channel_serial,
            'o' || digits(payer_seq, 27) as payer_openid,
            (created_s - {day0}) // 86400 as created_day_idx
        from w_payments as w
        inner join w_merchants as m using (merchant_idx)
        """
    )
    con.execute(
        """
        create temp table ref as
        select
            r.*,
            refund_id(r.refund_seq) as refund_id,
            p.order_id, p.channel, p.channel_serial, p.merchant_id, p.merchant_idx, p.wechat_mch_id,
            p.wechat_legacy, p.alipay_pid, p.unionpay_mer_id, p.created_s as order_created_s, p.paid_s,
            p.amount_fen as order_amount_fen, p.payer_openid,
            bill_day(r.requested_s, case p.channel when 'unionpay' then 3600 else 0 end) as bill_date,
            case p.channel
                when 'wechat' then '50' || digits(r.refund_seq + 500000000, 27)
                when 'alipay' then refund_id(r.refund_seq)
                else strftime(make_timestamp(r.requested_s * 1000000), '%Y%m%d%H%M%S')
                     || lpad(((r.refund_seq + 5000000) % 10000000)::varchar, 7, '0')
            end as channel_refund_serial
        from w_refunds as r
        inner join pay as p using (pay_seq)
        """
    )
    # `pay` and `ref` are DuckDB's own copies: nothing reads the Arrow payments and refunds again (see simulate)
    con.unregister("w_payments")
    con.unregister("w_refunds")
    return con


# Lines per Arrow batch fetched from DuckDB: a batch and its joined text stay at tens of MB whatever the file's size.
LINES_PER_BATCH = 100_000


def _write_lines(con: duckdb.DuckDBPyConnection, sql: str, f, eol: str = "\n", encoding: str = "utf-8") -> None:
    """Write the `line` column of a query to the binary file `f`, each line ended by `eol`, batch by batch."""
    for batch in con.sql(sql).to_arrow_reader(LINES_PER_BATCH):
        col = batch.column("line")
        if len(col) == 0:
            continue
        arr = pc.binary_join_element_wise(col, pa.scalar("", col.type), pa.scalar(eol, col.type))
        offsets = np.frombuffer(arr.buffers()[1], dtype=np.int64 if pa.types.is_large_string(arr.type) else np.int32)
        start, end = offsets[arr.offset], offsets[arr.offset + len(arr)]
        text = arr.buffers()[2].slice(start, end - start)  # the batch's lines, one after the other, as UTF-8
        f.write(text if encoding == "utf-8" else text.to_pybytes().decode("utf-8").encode(encoding))


WECHAT_ALL_HEADER = (
    "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,"
    "应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,"
    "手续费,费率,订单金额,申请退款金额,费率备注"
)
WECHAT_ALL_SUMMARY = "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额"
WECHAT_LEGACY_HEADER = (
    "交易时间,公众账号ID,商户号,子商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,"
    "总金额,企业红包金额,微信退款单号,商户退款单号,退款金额,企业红包退款金额,退款类型,退款状态,商品名称,商户数据包,"
    "手续费,费率"
)
WECHAT_LEGACY_SUMMARY = "总交易单数,总交易额,总退款金额,总企业红包退款金额,手续费总金额"
ALIPAY_HEADER = (
    "支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,对方账户,订单金额（元）,"
    "商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,商家优惠（元）,券核销金额（元）,券名称,"
    "商家红包消费金额（元）,卡消费金额（元）,退款批次号/请求号,服务费（元）,分润（元）,备注"
)
ALIPAY_SUMMARY_HEADER = (
    "门店编号,门店名称,交易订单总笔数,退款订单总笔数,订单金额（元）,商家实收（元）,支付宝优惠（元）,商家优惠（元）,"
    "卡消费金额（元）,服务费（元）,分润（元）,实收净额（元）"
)
BANK_HEADER = "交易日期,交易时间,记账日期,借方发生额,贷方发生额,余额,对方户名,对方账号,对方开户行,摘要,附言,交易流水号"
RECHARGE_PRODUCT = "账户余额充值"  # what the payer sees for a merchant's online top-up of its prepaid balance
PRODUCTS = "['会员年卡', '话费充值', '外卖订单', '电影票', '打车费', '商城订单,含运费', '游戏点券', '咖啡']"


def _channel_lines_sql(channel: str) -> str:
    """One row per channel bill line (payments, duplicate copies, refunds) with everything the writers need."""
    return f"""
        select
            'pay' as kind, p.merchant_idx, p.bill_date, p.paid_s as event_s, p.created_s as order_created_s,
            p.pay_seq as seq, c.copy as copy_no, p.order_id, p.channel_serial, null as refund_id,
            null as channel_refund_serial, p.channel_amount_fen as amount_fen, p.channel_fee_fen as fee_fen,
            'SUCCESS' as status, p.payer_openid, p.payer_seq, p.wechat_mch_id, p.wechat_legacy, p.alipay_pid,
            p.unionpay_mer_id,
            case when p.biz_type = 'RECHARGE' then '{RECHARGE_PRODUCT}' else {PRODUCTS}[(p.pay_seq % 8) + 1] end
            as product, null as orig_serial, p.paid_s as orig_s
        from pay as p
        inner join (select unnest(range(2)) as copy) as c on c.copy < p.channel_copies
        where p.channel = '{channel}' and p.in_channel
        union all
        select
            'refund' as kind, r.merchant_idx, r.bill_date, r.requested_s, r.order_created_s,
            r.refund_seq, 0, r.order_id, r.channel_serial, r.refund_id, r.channel_refund_serial,
            -r.amount_fen, -r.fee_back_fen, r.channel_status, r.payer_openid, r.pay_seq, r.wechat_mch_id,
            r.wechat_legacy, r.alipay_pid, r.unionpay_mer_id, {PRODUCTS}[(r.pay_seq % 8) + 1], r.channel_serial,
            r.paid_s
        from ref as r
        where r.channel = '{channel}'
    """


# ---------------------------------------------------------------------------------------------------------------
# Writers. Each writes one file for one bill date and one merchant (or one day for bank/internal) to `path`.
# ---------------------------------------------------------------------------------------------------------------


def _wechat_bill(con, rows_sql: str, legacy: bool, path: Path) -> None:
    bt = "'`' || "
    common = f"""
        {bt}ts(event_s) || ',' || {bt}'wx3f2a9c0d1e7b5a61' || ',' || {bt}wechat_mch_id || ',' || {bt}'0' || ',' ||
        '`' || ',' || {bt}channel_serial || ',' || {bt}order_id || ',' || {bt}payer_openid || ',' ||
        {bt}'JSAPI' || ',' || {bt}(case kind when 'pay' then 'SUCCESS' else 'REFUND' end) || ',' ||
        {bt}'CMB_DEBIT' || ',' || {bt}'CNY' || ',' ||
        {bt}yuan(case kind when 'pay' then amount_fen else 0 end) || ',' || {bt}'0.00' || ',' ||
        {bt}coalesce(channel_refund_serial, '0') || ',' || {bt}coalesce(refund_id, '0') || ',' ||
        {bt}yuan(case kind when 'refund' then -amount_fen else 0 end) || ',' || {bt}'0.00' || ',' ||
        {bt}(case kind when 'refund' then 'ORIGINAL' else '' end) || ',' ||
        {bt}(case kind when 'refund' then status else '' end) || ',' ||
        {bt}replace(product, ',', '，') || ',' || {bt}'uid=' || payer_seq::varchar || ',' ||
        {bt}yuan5(fee_fen) || ',' || {bt}'0.60%'
    """
    tail = "" if legacy else f" || ',' || {bt}yuan(case kind when 'pay' then amount_fen else 0 end) || ',' || " \
        f"{bt}yuan(case kind when 'refund' then -amount_fen else 0 end) || ',' || '`'"
    s = con.execute(
        f"""
        select count(*), coalesce(sum(case kind when 'pay' then amount_fen else 0 end), 0),
               coalesce(sum(case kind when 'refund' then -amount_fen else 0 end), 0), coalesce(sum(fee_fen), 0)
        from ({rows_sql})
        """
    ).fetchall()[0]
    cnt, gross, refund, fees = s
    y = lambda f: con.execute(f"select yuan({int(f)})").fetchall()[0][0]  # noqa: E731
    if legacy:
        header, summary_header = WECHAT_LEGACY_HEADER, WECHAT_LEGACY_SUMMARY
        summary = f"`{cnt},`{y(gross)},`{y(refund)},`0.00,`{y(fees)}000"
    else:
        header, summary_header = WECHAT_ALL_HEADER, WECHAT_ALL_SUMMARY
        summary = f"`{cnt},`{y(gross)},`{y(refund)},`0.00,`{y(fees)}000,`{y(gross)},`{y(refund)}"
    with open(path, "wb") as f:
        f.write(f"{header}\n".encode())
        _write_lines(con, f"select {common}{tail} as line from ({rows_sql}) order by event_s, seq, copy_no", f)
        f.write(f"{summary_header}\n{summary}\n".encode())


def _alipay_bill(con, rows_sql: str, pid: str, d: dt.date, path: Path) -> None:
    t = "|| '\t' ||"
    detail_sql = f"""
        select channel_serial {t} ',' || order_id {t} ',' || (case kind when 'pay' then '交易' else '退款' end) {t}
            ',' || '"' || product || '"' || ',' || ts(order_created_s) || ',' || ts(event_s) || ',' ||
            '\t,\t,\t,\t,' || '*' || right(payer_name(payer_seq), 1) || '(138****' || right(payer_seq::varchar, 4)
            || ')' {t} ',' || yuan(amount_fen) || ',' || yuan(amount_fen) || ',0.00,0.00,0.00,0.00,0.00,,0.00\t,0.00,'
            || coalesce(refund_id, '') {t} ',' || yuan(-fee_fen) || ',0.00,' as line
        from ({rows_sql}) order by event_s, seq, copy_no
    """
    s = con.execute(
        f"""
        select count(*) filter (where kind = 'pay'), coalesce(sum(amount_fen) filter (where kind = 'pay'), 0),
               count(*) filter (where kind = 'refund'), coalesce(sum(amount_fen) filter (where kind = 'refund'), 0),
               coalesce(sum(-fee_fen), 0)
        from ({rows_sql})
        """
    ).fetchall()[0]
    n_pay, pay_sum, n_ref, ref_sum, fee_sum = s
    y = lambda f: con.execute(f"select yuan({int(f)})").fetchall()[0][0]  # noqa: E731
    nd = d + dt.timedelta(days=1)
    cn = lambda x: f"{x.year}年{x.month:02d}月{x.day:02d}日"  # noqa: E731
    head = (
        "#支付宝业务明细查询\r\n"
        f"#账号：[{pid}0156]\r\n"
        f"#起始日期：[{cn(d)} 00:00:00]   终止日期：[{cn(nd)} 00:00:00]\r\n"
        "#-----------------------------------------业务明细列表----------------------------------------\r\n"
        f"{ALIPAY_HEADER}\r\n"
    )
    foot = (
        "#-----------------------------------------业务明细列表结束------------------------------------\r\n"
        f"#交易合计：{n_pay}笔，商家实收共{y(pay_sum)}元，商家优惠共0.00元\r\n"
        f"#退款合计：{n_ref}笔，商家实收退款共{y(ref_sum)}元，商家优惠退款共0.00元\r\n"
        f"#导出时间：[{cn(nd)} 05:41:17]\r\n"
    )
    total = pay_sum + ref_sum
    summary = (
        "#支付宝业务汇总查询\r\n"
        f"#账号：[{pid}0156]\r\n"
        f"{ALIPAY_SUMMARY_HEADER}\r\n"
        f"合计,,{n_pay},{n_ref},{y(total)},{y(total)},0.00,0.00,0.00,{y(fee_sum)},0.00,{y(total + fee_sum)}\r\n"
        f"#导出时间：[{cn(nd)} 05:41:17]\r\n"
    )
    stem = f"{pid}0156_{d:%Y%m%d}"
    member = _spool_path(path)
    with open(member, "wb") as f:
        f.write(head.encode("gbk"))
        _write_lines(con, detail_sql, f, eol="\r\n", encoding="gbk")
        f.write(foot.encode("gbk"))
    _write_zip(
        path,
        [
            (f"{stem}_业务明细(汇总).csv", summary.encode("gbk")),  # member order is not fixed in real files
            (f"{stem}_业务明细.csv", member),
        ],
        gbk_names=True,
    )
    member.unlink()


def _unionpay_zip(con, rows_sql: str, mer: str, d: dt.date, path: Path) -> None:
    """The ZM file (fixed width, one space between fields, 607 bytes + CRLF; ASCII fields only so byte = character
    offsets) and an empty ZME file, zipped."""
    member = _spool_path(path)
    with open(member, "wb") as f:
        _write_lines(con, _unionpay_zm_sql(rows_sql), f, eol="\r\n", encoding="gbk")
    _write_zip(path, [(f"INN{d:%y%m%d}88ZM_{mer}", member), (f"INN{d:%y%m%d}88ZME_{mer}", b"")])
    member.unlink()


def _unionpay_zm_sql(rows_sql: str) -> str:
    return f"""
        select
            rpad('S56', 3, ' ') || ' ' || rpad('48021000', 11, ' ') || ' ' || rpad('00049992', 11, ' ') || ' ' ||
            lpad((seq % 1000000)::varchar, 6, '0') || ' ' || strftime(make_timestamp(event_s * 1000000), '%m%d%H%M%S')
            || ' ' || rpad('622588******' || right(lpad(payer_seq::varchar, 4, '0'), 4), 19, ' ') || ' ' ||
            lpad(abs(amount_fen)::varchar, 12, '0') || ' ' || '5399' || ' ' || '07' || ' ' ||
            (case kind when 'pay' then channel_serial else channel_refund_serial end) || ' ' || '01' || ' ' ||
            rpad(coalesce(refund_id, order_id), 32, ' ') || ' ' || '01' || ' ' || rpad('', 6, ' ') || ' '
            || rpad('', 10, ' ') || ' '
            || (case when fee_fen >= 0 then 'D' else 'C' end) || lpad(abs(fee_fen)::varchar, 12, '0') || ' ' ||
            (case when amount_fen - fee_fen >= 0 then 'C' else 'D' end)
            || lpad(abs(amount_fen - fee_fen)::varchar, 12, '0') || ' ' || '0001' || ' ' || rpad('', 15, ' ') || ' ' ||
            (case kind when 'pay' then '01' else '04' end) || ' ' || '01' || ' ' || '000201' || ' ' || '01' || ' ' ||
            rpad('', 4, ' ') || ' ' || rpad('', 32, ' ') || ' ' || '1' || ' ' ||
            (case kind when 'pay' then rpad('', 21, ' ') else orig_serial end) || ' ' || unionpay_mer_id || ' ' || ' '
            || ' ' || rpad('', 15, ' ') || ' ' || rpad('', 32, ' ') || ' ' || rpad('', 13, ' ') || ' ' ||
            (case when amount_fen - fee_fen >= 0 then 'C' else 'D' end)
            || lpad(abs(amount_fen - fee_fen)::varchar, 12, '0') || ' ' || '00000000' || ' ' || rpad('', 32, ' ') || ' '
            || lpad('0', 13, '0') || ' ' || lpad('0', 13, '0') || ' ' || lpad('0', 12, '0') || ' ' || '00' || ' '
            || '1' || ' ' || rpad(case kind when 'refund' then order_id else '' end, 32, ' ') || ' '
            || rpad('', 98, ' ')
            as line
        from ({rows_sql}) order by event_s, seq, copy_no
    """


class _GbkZipInfo(zipfile.ZipInfo):
    """A member whose name is stored as raw GBK bytes without the UTF-8 flag, as Chinese Windows tools write it."""

    def _encodeFilenameFlags(self):  # noqa: N802 (zipfile's own name)
        return self.filename.encode("gbk"), self.flag_bits


def _spool_path(path: Path) -> Path:
    """Where a zip member is written before it is zipped into `path` (removed once zipped)."""
    return path.with_name(path.name + ".member")


def _write_zip(path: Path, members: list[tuple[str, bytes | Path]], gbk_names: bool = False) -> None:
    """Zip members given as bytes, or as a file copied in pieces (a member can be hundreds of MB)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members:
            info = (_GbkZipInfo if gbk_names else zipfile.ZipInfo)(name, date_time=ZIP_DATE_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            if isinstance(data, bytes):
                zf.writestr(info, data)
                continue
            # zipfile decides on zip64 headers from the size it is told before the first byte, as writestr does
            # from len(data): hence a member spooled to a file of known size, and the same bytes as writestr's
            info.file_size = data.stat().st_size
            with open(data, "rb") as src, zf.open(info, "w") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)


# ---------------------------------------------------------------------------------------------------------------
# The world on disk
# ---------------------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Delivery:
    """One file as delivered: where it lands and its delivery time (Asia/Shanghai, naive)."""

    rel_path: str
    delivered_at: dt.datetime


def _delivery_dir(d: dt.date) -> str:
    return f"landing/{d:%Y-%m-%d}"


def _target(out: Path, dl: Delivery) -> Path:
    """The path a delivery is written to, its folder made. Files are written as they are made, not kept in memory."""
    path = out / dl.rel_path
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


NO_BILL_XML = (
    b"<xml><return_code><![CDATA[FAIL]]></return_code><return_msg><![CDATA[No Bill Exist]]>"
    b"</return_msg><error_code><![CDATA[20002]]></error_code></xml>"
)


def simulate(p: WorldParams, out: Path) -> dict:
    """Write the world under `out` (landing/, ground_truth/, world.json), which must be empty or not exist: two
    worlds' files in one landing folder would mix (same names and delivery times, other bytes). Returns a small
    summary."""
    out = Path(out)
    if out.is_file() or (out.exists() and any(out.iterdir())):
        raise FileExistsError(f"{out}: not an empty directory; a world is written into an empty one (the files of "
                              "two worlds would mix). Remove it or choose another --out")
    world = build_world(p)
    n_rows = {name: tbl.num_rows for name, tbl in world.items()}
    con = _connect(world, p)
    # let the Arrow payments and refunds go while DuckDB holds `pay` and `ref` (0.6 GB at 5M trades a day)
    del world["payments"], world["refunds"]
    deliveries: list[Delivery] = []
    truth: list[dict] = []

    def deliver(rel: str, when: dt.datetime) -> Path:
        """Where a channel file delivered at `when` is written; its time is stamped once the world is written."""
        deliveries.append(Delivery(f"{_delivery_dir(when.date())}/{rel}", when))
        return _target(out, deliveries[-1])

    dates = p.dates
    rng = np.random.default_rng(p.seed + 1)  # file-level choices, independent of the row-level stream
    merchants = world["merchants"].to_pylist()

    # File-level anomaly placements.
    empty = (int(rng.integers(0, p.merchants)), "wechat", dates[min(1, len(dates) - 1)]) if p.empty_day else None
    late = (int(rng.integers(0, p.merchants)), "alipay", dates[0]) if p.late_file and p.days >= 3 else None
    dup_file = (int(rng.integers(0, p.merchants)), "unionpay", dates[0]) if p.duplicate_file else None
    reissue = (int(rng.integers(0, p.merchants)), "wechat", dates[0]) if p.reissued_file else None
    if empty:
        # An empty day: that merchant's WeChat trades of that day went through Alipay instead.
        mi, _, d = empty
        con.execute(
            f"""update pay set channel = 'alipay', channel_serial = strftime(make_timestamp(paid_s * 1000000),
            '%Y%m%d') || '22' || digits(pay_seq, 18) where merchant_idx = {mi} and channel = 'wechat'
            and bill_date = '{d}'"""
        )
        con.execute(f"""update ref set channel = 'alipay', channel_refund_serial = refund_id,
            channel_status = 'SUCCESS', anomaly = '',
            channel_serial = (select p.channel_serial from pay as p where p.pay_seq = ref.pay_seq)
            where pay_seq in (select pay_seq from pay where merchant_idx = {mi} and channel = 'alipay'
            and bill_date = '{d}')""")
        # Refunds of earlier WeChat payments that would fall on the empty day are not made at all.
        con.execute(f"delete from ref where merchant_idx = {mi} and channel = 'wechat' and bill_date = '{d}'")
        truth.append(_truth("empty_day", "wechat", d, merchants[mi]["wechat_mch_id"], "", ""))

    # The re-issued bill corrects one payment line; every other line is the same in both versions and keeps the day
    # it was first visible, so only that payment clears (or credits) on the re-issue day.
    corrected = _reissue_corrected(con, reissue) if reissue else None
    _settlement_payouts(con, p, late, corrected)
    _withdrawals(con, p, late, corrected)
    balance_fen = 100_000_000_000  # the settlement account's opening balance on the first day
    for d in dates:
        deliver_day = dt.datetime.combine(d + dt.timedelta(days=1), dt.time(10, 0))
        for mrow in merchants:
            mi = mrow["merchant_idx"]
            for channel in CHANNELS:
                rows = f"select * from ({_channel_lines_sql(channel)}) where merchant_idx = {mi} and bill_date = '{d}'"
                when = deliver_day
                if late and (mi, channel, d) == late:
                    when = deliver_day + dt.timedelta(days=2)
                if channel == "wechat":
                    rel, key = f"wechat/wechat_{mrow['wechat_mch_id']}_{d:%Y%m%d}_ALL.csv", mrow["wechat_mch_id"]
                elif channel == "alipay":
                    rel, key = f"alipay/{mrow['alipay_pid']}0156_{d:%Y%m%d}.csv.zip", mrow["alipay_pid"]
                else:
                    rel, key = f"unionpay/{mrow['unionpay_mer_id']}_{d:%Y%m%d}.zip", mrow["unionpay_mer_id"]
                first = None
                if reissue and (mi, channel, d) == reissue and corrected:
                    # First delivery had one payment 1.00 yuan too high; the corrected file follows a day later.
                    first = deliver(rel, when)
                    when = when + dt.timedelta(days=1)
                    rel = rel.replace("_ALL.csv", "_ALL.reissued.csv")
                    truth.append(_truth("reissued_file", channel, d, key, "", ""))
                path = deliver(rel, when)
                if channel == "wechat" and empty and (mi, channel, d) == empty:
                    path.write_bytes(NO_BILL_XML)
                elif channel == "wechat":
                    _wechat_bill(con, rows, bool(mrow["wechat_legacy"]), path)
                elif channel == "alipay":
                    _alipay_bill(con, rows, mrow["alipay_pid"], d, path)
                else:
                    _unionpay_zip(con, rows, mrow["unionpay_mer_id"], d, path)
                if first:
                    _write_reissue_original(path, first, bool(mrow["wechat_legacy"]))
                if late and (mi, channel, d) == late:
                    truth.append(_truth("late_file", channel, d, key, "", "", suspense_until=when.date()))
                if dup_file and (mi, channel, d) == dup_file:
                    again = when + dt.timedelta(days=1)
                    shutil.copyfile(path, deliver(rel.replace(".zip", ".copy.zip"), again))
                    truth.append(_truth("duplicate_file", channel, d, key, "", ""))

        deliveries.extend(_internal_dumps(con, p, d, deliver_day, out))
        deliveries.append(_payout_result(con, p, d, deliver_day, out))
        statement, balance_fen = _bank_statement(con, p, d, deliver_day, balance_fen, out)
        deliveries.append(statement)
    # The statement of the day after the world: the channels settle its last bill day (T+1), so the world closes.
    after = dates[-1] + dt.timedelta(days=1)
    statement, balance_fen = _bank_statement(con, p, after, dt.datetime.combine(after + dt.timedelta(days=1),
                                                                                dt.time(10, 0)), balance_fen, out)
    deliveries.append(statement)

    truth.extend(_row_truth(con, p))
    for dl in deliveries:
        stamp = dl.delivered_at.replace(tzinfo=dt.timezone(dt.timedelta(hours=8))).timestamp()
        os.utime(out / dl.rel_path, (stamp, stamp))
    gt = out / "ground_truth"
    gt.mkdir(parents=True, exist_ok=True)
    truth.sort(key=lambda t: (t["kind"], t["channel"], t["bill_date"], t["key"], t["ref"]))
    with open(gt / "anomalies.jsonl", "w", encoding="utf-8") as f:
        for t in truth:
            f.write(json.dumps(t, ensure_ascii=False, sort_keys=True) + "\n")
    _merchant_clearing_truth(con, gt / "merchant_clearing.csv")
    _settlement_truth(con, gt / "settlement_batches.csv")
    _prepaid_truth(con, gt / "prepaid_balances.csv")
    counts = dict(
        con.execute("select channel, count(*) from pay where in_channel group by channel order by channel").fetchall()
    )
    summary = {
        "params": p.to_json(),
        "files": len(deliveries),
        "payments": n_rows["payments"],
        "refunds": n_rows["refunds"],
        "payouts": con.execute("select count(*) from w_payouts where biz_type = 'SETTLEMENT'").fetchall()[0][0],
        "withdrawals": con.execute("select count(*) from w_payouts where biz_type = 'WITHDRAWAL'").fetchall()[0][0],
        "online_recharges": con.execute("select count(*) from pay where biz_type = 'RECHARGE'").fetchall()[0][0],
        "recharges": n_rows["recharges"],
        "channel_payments": counts,
        "anomalies": len(truth),
    }
    (out / "world.json").write_text(json.dumps(summary, ensure_ascii=False, indent=2, sort_keys=True) + "\n")
    return summary


def _reissue_row(lines: list[str]) -> int | None:
    """The detail line a re-issued WeChat bill corrects: its first payment (None when the bill has no payment)."""
    pay_rows = [i for i, ln in enumerate(lines[1:-3], start=1) if ln.split(",")[9] == "`SUCCESS"]
    return pay_rows[0] if pay_rows else None


def _reissue_corrected(con, reissue) -> tuple | None:
    """(merchant_idx, channel, bill date, order id) of the payment the re-issued bill corrects; None when there is
    nothing to re-issue. It is the bill's first payment line (`_reissue_row`: a payment's line says `SUCCESS, a
    refund's `REFUND), found by the query the bill is written from rather than by reading the bill whole."""
    mi, channel, d = reissue
    rows = f"select * from ({_channel_lines_sql(channel)}) where merchant_idx = {mi} and bill_date = '{d}'"
    first = con.execute(
        f"select order_id from ({rows}) where kind = 'pay' order by event_s, seq, copy_no limit 1").fetchall()
    return (mi, channel, d, first[0][0]) if first else None


def _reissue_lines(lines: Iterable[str], legacy: bool) -> Iterator[str]:
    """The lines (without their newline) of the wrong first delivery of a re-issued WeChat bill, from the bill's:
    its first payment 1.00 yuan too high, the summary's totals to match. A line at a time: a bill can be a GB."""
    bump = lambda c: "`" + _yuan_py(_fen_py(c[1:]) + 100)  # noqa: E731
    lines = iter(lines)
    yield next(lines)  # the header
    bumped = False
    for ln in lines:
        if ln.startswith("总交易单数"):  # the summary's header: the summary follows
            yield ln
            summary = next(lines).split(",")
            summary[1] = bump(summary[1])
            if not legacy:
                summary[5] = bump(summary[5])
            yield ",".join(summary)
            yield from lines
            return
        cells = ln.split(",")
        if not bumped and cells[9] == "`SUCCESS":
            cells[12] = bump(cells[12])
            if not legacy:
                cells[24] = bump(cells[24])
            ln, bumped = ",".join(cells), True
        yield ln


def _reissue_original(text: str, legacy: bool) -> bytes | None:
    """The wrong first delivery of a re-issued WeChat bill: one payment 1.00 yuan too high, totals to match."""
    lines = text.split("\n")
    if _reissue_row(lines) is None:
        return None
    return "\n".join(_reissue_lines(lines, legacy)).encode("utf-8")


def _write_reissue_original(bill: Path, path: Path, legacy: bool) -> None:
    """`_reissue_original` of the bill at `bill` (which has a payment), written to `path` a line at a time."""
    with open(bill, encoding="utf-8", newline="\n") as src, open(path, "w", encoding="utf-8", newline="\n") as dst:
        for ln in _reissue_lines((ln.removesuffix("\n") for ln in src), legacy):
            dst.write(ln + "\n")


def _fen_py(s: str) -> int:
    neg = s.startswith("-")
    whole, frac = s.lstrip("-").split(".")
    v = int(whole) * 100 + int(frac[:2])
    return -v if neg else v


def _yuan_py(f: int) -> str:
    return f"{'-' if f < 0 else ''}{abs(f) // 100}.{abs(f) % 100:02d}"


def _truth(kind, channel, bill_date, key, ref, ref2, suspense_until=None, amount_fen=None) -> dict:
    outcome, disposition = ANOMALY_OUTCOMES[kind]
    return {
        "kind": kind,
        "channel": channel,
        "bill_date": str(bill_date),
        "key": key,
        "ref": ref,
        "ref2": ref2,
        "expected_break_type": outcome,
        "expected_disposition": disposition,
        "suspense_until": str(suspense_until) if suspense_until else None,
        "amount_fen": amount_fen,
    }


def _row_truth(con, p: WorldParams) -> list[dict]:
    rows = con.execute(
        """
        select anomaly, channel, bill_date, order_id, channel_serial, channel_amount_fen - amount_fen
        from pay where anomaly <> ''
        union all
        select r.anomaly, r.channel, r.bill_date, r.refund_id, r.channel_refund_serial, 0
        from ref as r where r.anomaly <> ''
        union all
        select anomaly, 'bank', date '1970-01-01' + (day_idx + final_day_idx - day_idx)::int, payout_id(payout_seq),
               '', amount_fen
        from w_payouts where anomaly <> ''
        union all
        select anomaly, 'bank', date '1970-01-01' + day_idx::int, recharge_id(recharge_seq), '', amount_fen
        from w_recharges where anomaly <> ''
        order by 1, 2, 3, 4
        """
    ).fetchall()
    day0 = p.start_date
    out = []
    for kind, channel, bill_date, key, ref, delta in rows:
        if channel == "bank":
            bill_date = day0 + dt.timedelta(days=(bill_date - dt.date(1970, 1, 1)).days)
        out.append(_truth(kind, channel, bill_date, key, ref, "", amount_fen=int(delta) if delta else None))
    return out


PROJECT_DIR = Path(__file__).resolve().parents[2]


def business_days() -> list[dt.date]:
    """Business days from the project's calendar seed (holidays and make-up workdays included)."""
    rows = (PROJECT_DIR / "seeds" / "business_calendar.csv").read_text().splitlines()[1:]
    return [dt.date.fromisoformat(r.split(",")[0]) for r in rows if r.split(",")[1] == "true"]


def _known_shift(a: str, late, corrected, payment: bool = True) -> str:
    """SQL: the days after its bill date that a channel line of table alias `a` (a payment, or a refund when not
    `payment`) becomes known. A channel file becomes known the day after it is delivered minus one: the late file two
    days later. Of a re-issued bill only the payment it corrects is new (a day later); its other lines are the same
    in both versions and were known from the first."""
    cases = []
    if late:
        cases.append(f"when {a}.merchant_idx = {late[0]} and {a}.channel = '{late[1]}' and {a}.bill_date = '{late[2]}' "
                     "then 2")
    if corrected and payment:
        mi, channel, d, order_id = corrected
        cases.append(f"when {a}.merchant_idx = {mi} and {a}.channel = '{channel}' and {a}.bill_date = '{d}' "
                     f"and {a}.order_id = '{order_id}' then 1")
    return f"(case {' '.join(cases)} else 0 end)" if cases else "0"


def _settlement_payouts(con, p: WorldParams, late, corrected) -> None:
    """Clear, batch and pay out, as the warehouse should: tables `cleared` (one row per line that clears, with our
    fee and its clearing day), `batches` (per merchant and clearing day, due T+N business days later) and
    `w_payouts` (the payouts of the batches due inside the world; a failed or returned one is sent again on the
    next business day)."""
    plans = " union all ".join(
        f"select '{plan}' as plan, '{ch}' as channel, {bp} as bp, {FEE_PLAN_MIN_FEN[plan]} as min_fen"
        for plan, rates in FEE_PLAN_RATES_BP.items() for ch, bp in rates.items()
    )
    directory = merchant_directory(p.merchants)
    merchant_plans = " union all ".join(
        f"select '{m['merchant_id']}' as merchant_id, '{m['fee_plan_id']}' as plan, "
        f"{m['settlement_cycle_days']} as cycle" for m in directory
    )
    kinds = ", ".join(f"'{k}'" for k in CLEARING_KINDS)

    def known_shift(a: str, payment: bool = True) -> str:
        return _known_shift(a, late, corrected, payment)

    day0 = _day_seconds(p.start_date)
    con.execute(
        f"""
        create or replace temp table cleared as
        with plans as ({plans}),
        merchant_plans as ({merchant_plans}),
        fees as (
            select p.pay_seq, p.merchant_id, p.merchant_idx, p.amount_fen, p.channel,
                   greatest(p.bill_date + {known_shift('p')}::int,
                            (make_timestamp(p.created_s * 1000000))::date) as cleared_on,
                   greatest((2 * p.amount_fen * f.bp + 10000) // 20000, f.min_fen) as fee_fen
            from pay as p
            inner join merchant_plans as m using (merchant_id)
            inner join plans as f on f.plan = m.plan and f.channel = p.channel
            -- an online recharge tops up the merchant's prepaid balance: it is not trade revenue and does not clear
            where p.in_internal and p.in_channel and p.anomaly in ({kinds}) and p.biz_type = 'TRADE'
        )
        select merchant_id, merchant_idx, cleared_on, amount_fen, fee_fen, 'payment' as kind from fees
        union all
        select f.merchant_id, f.merchant_idx, r.bill_date + {known_shift('r', payment=False)}::int,
               -r.amount_fen, -((2 * f.fee_fen * r.amount_fen + f.amount_fen) // (2 * f.amount_fen)), 'refund'
        from ref as r inner join fees as f using (pay_seq)
        where r.channel_status = 'SUCCESS'
        """
    )
    days = business_days()
    first, last = p.start_date, p.dates[-1]
    batches = con.execute(
        f"""
        with merchant_plans as ({merchant_plans})
        select c.merchant_id, c.merchant_idx, c.cleared_on, m.cycle, sum(c.amount_fen - c.fee_fen) as net_fen
        from cleared as c inner join merchant_plans as m using (merchant_id)
        group by all order by c.cleared_on, c.merchant_id
        """
    ).fetchall()
    rows = []
    # A day whose refunds exceed its payments nets negative: that batch pays nothing and the merchant's next batches
    # pay only what is left after the shortfall (carried forward, never taken from the prepaid balance). Each batch
    # pays the rise of the merchant's running net above its highest point so far (at least 0).
    net_so_far: dict[str, int] = {}
    payable_so_far: dict[str, int] = {}
    for mid, mi, cleared_on, cycle, net in batches:
        after = [d for d in days if d > cleared_on]
        if len(after) < cycle:
            raise ValueError(f"seeds/business_calendar.csv ends before {cleared_on} + {cycle} business days")
        due = after[cycle - 1]
        net_so_far[mid] = net_so_far.get(mid, 0) + int(net)
        before = payable_so_far.get(mid, 0)
        payable_so_far[mid] = max(before, net_so_far[mid])
        rows.append((f"SB{mid}{cleared_on:%Y%m%d}", mid, mi, cleared_on, due, int(net), payable_so_far[mid] - before))
    con.execute("create or replace temp table batches (settlement_batch_id varchar, merchant_id varchar, "
                "merchant_idx bigint, cleared_on date, due_on date, amount_fen bigint, payable_fen bigint)")
    if rows:
        con.executemany("insert into batches values (?, ?, ?, ?, ?, ?, ?)", rows)
    # Payouts: batches due inside the world with money to pay, submitted on the due day.
    due = [r for r in rows if first <= r[4] <= last and r[6] > 0]
    rng = np.random.default_rng(p.seed + 2)
    n = len(due)
    day_idx = np.array([(r[4] - first).days for r in due], dtype=np.int64)
    taken = np.zeros(n, dtype=bool)
    anomaly = np.full(n, "", dtype=object)
    not_last = np.flatnonzero(day_idx < p.days - 1)
    anomaly[_pick(rng, not_last, p.rate_payout_processing, taken)] = "payout_processing_then_final"
    anomaly[_pick(rng, not_last, p.rate_payout_returned, taken)] = "payout_returned"
    fail = _pick(rng, not_last, p.rate_payout_fail, taken)
    outcome = np.full(n, "S", dtype=object)
    outcome[fail] = "F"
    final_day = np.where(anomaly == "payout_processing_then_final", day_idx + 1, day_idx)
    return_day = np.where(anomaly == "payout_returned", day_idx + 1, -1)
    world_days = {d: i for i, d in enumerate(p.dates)}
    # a failed or returned payout is sent again on the next business day inside the world
    again = []
    for i in np.flatnonzero((outcome == "F") | (anomaly == "payout_returned")):
        ended = final_day[i] if outcome[i] == "F" else return_day[i]
        nxt = next((d for d in days if d > p.dates[ended]), None)
        if nxt in world_days:
            again.append((i, world_days[nxt]))
    batch_ids = [r[0] for r in due] + [due[i][0] for i, _ in again]
    merchant_idx = [r[2] for r in due] + [due[i][2] for i, _ in again]
    amounts = [r[6] for r in due] + [due[i][6] for i, _ in again]
    all_days = np.concatenate([day_idx, np.array([d for _, d in again], dtype=np.int64)])
    n_all = len(batch_ids)
    payouts = pa.table(
        {
            "payout_seq": np.arange(n_all, dtype=np.int64),
            "merchant_idx": np.array(merchant_idx, dtype=np.int64),
            "day_idx": all_days,
            "submitted_s": day0 + all_days * 86400 + 10 * 3600 + np.arange(n_all, dtype=np.int64) * 60,
            "amount_fen": np.array(amounts, dtype=np.int64),
            "outcome": np.concatenate([outcome, np.full(len(again), "S", dtype=object)]).astype(str),
            "final_day_idx": np.concatenate([final_day, np.array([d for _, d in again], dtype=np.int64)]),
            "return_day_idx": np.concatenate([return_day, np.full(len(again), -1, dtype=np.int64)]),
            "anomaly": np.concatenate([anomaly, np.full(len(again), "", dtype=object)]).astype(str),
            "settlement_batch_id": batch_ids,
            "biz_type": ["SETTLEMENT"] * n_all,
        }
    )
    con.register("w_payouts_arrow", payouts)
    con.execute("create or replace temp table w_payouts as select * from w_payouts_arrow")
    con.unregister("w_payouts_arrow")


def _withdrawals(con, p: WorldParams, late, corrected) -> None:
    """Merchants' withdrawals (提现) from their prepaid balance, appended to `w_payouts`: they go out through the same
    bank payout channel as settlement payouts, with no settlement batch and business type WITHDRAWAL.

    The prepaid balance is credited by offline recharges (on the day the bank credit arrives and reconciles) and by
    online recharges (on the day the channel line and our payment are both known, as the warehouse clears). A merchant
    withdraws on a day at most part of what was credited before that day, less everything it asked for before
    (failed ones included), so the balance can never go negative, whatever the bank answers."""
    day0 = _day_seconds(p.start_date)
    con.execute(
        f"""
        create or replace temp table prepaid_credits as
        select p.merchant_id, p.merchant_idx, 'online' as kind, p.amount_fen,
               greatest(p.bill_date + {_known_shift('p', late, corrected)}::int,
                        (make_timestamp(p.created_s * 1000000))::date) as credited_on
        from pay as p
        where p.biz_type = 'RECHARGE' and p.in_internal and p.in_channel and p.anomaly = ''
        union all
        select m.merchant_id, r.merchant_idx, 'offline', r.amount_fen, date '{p.start_date}' + r.day_idx::int
        from w_recharges as r inner join w_merchants as m using (merchant_idx)
        where r.anomaly not in ('recharge_unclaimed', 'recharge_no_credit')
        """
    )
    credited = con.execute("select merchant_idx, credited_on, sum(amount_fen) from prepaid_credits group by all"
                           ).fetchall()
    rng = np.random.default_rng(p.seed + 4)
    rows = []  # (merchant_idx, day index, amount in fen)
    asked = [0] * p.merchants
    for di, d in enumerate(p.dates[1:], start=1):
        for mi in range(p.merchants):
            available = sum(int(fen) for m, on, fen in credited if m == mi and on < d) - asked[mi]
            amount = int(available * rng.uniform(0.2, 0.6)) // 100 * 100
            if amount > 0:
                rows.append((mi, di, amount))
                asked[mi] += amount
    n = len(rows)
    if not n:
        return
    day_idx = np.array([r[1] for r in rows], dtype=np.int64)
    taken = np.zeros(n, dtype=bool)
    anomaly = np.full(n, "", dtype=object)
    anomaly[_pick(rng, np.flatnonzero(day_idx < p.days - 1), p.rate_withdrawal_returned, taken)] = (
        "withdrawal_returned")
    anomaly[_pick(rng, np.arange(n), p.rate_withdrawal_fail, taken)] = "withdrawal_failed"
    first_seq = con.execute("select coalesce(max(payout_seq) + 1, 0) from w_payouts").fetchall()[0][0]
    withdrawals = pa.table(
        {
            "payout_seq": first_seq + np.arange(n, dtype=np.int64),
            "merchant_idx": np.array([r[0] for r in rows], dtype=np.int64),
            "day_idx": day_idx,
            # merchants ask in the afternoon; the bank answers the same day
            "submitted_s": day0 + day_idx * 86400 + 14 * 3600 + np.arange(n, dtype=np.int64) * 60,
            "amount_fen": np.array([r[2] for r in rows], dtype=np.int64),
            "outcome": np.where(anomaly == "withdrawal_failed", "F", "S").astype(str),
            "final_day_idx": day_idx,
            "return_day_idx": np.where(anomaly == "withdrawal_returned", day_idx + 1, -1),
            "anomaly": anomaly.astype(str),
            "settlement_batch_id": [""] * n,
            "biz_type": ["WITHDRAWAL"] * n,
        }
    )
    con.register("w_withdrawals_arrow", withdrawals)
    con.execute("insert into w_payouts by name select * from w_withdrawals_arrow")
    con.unregister("w_withdrawals_arrow")


def _prepaid_truth(con, path: Path) -> None:
    """Each merchant's prepaid balance once the world has closed: online and offline recharges credited, withdrawals
    paid (a failed or returned one gives the money back), and the balance."""
    rows = con.execute(
        """
        with credits as (
            select merchant_id, count(*) filter (where kind = 'online') as online_n,
                   coalesce(sum(amount_fen) filter (where kind = 'online'), 0) as online_fen,
                   count(*) filter (where kind = 'offline') as offline_n,
                   coalesce(sum(amount_fen) filter (where kind = 'offline'), 0) as offline_fen
            from prepaid_credits group by merchant_id
        ),
        paid as (
            select m.merchant_id, count(*) as n, sum(w.amount_fen) as fen
            from w_payouts as w inner join w_merchants as m using (merchant_idx)
            where w.biz_type = 'WITHDRAWAL' and w.outcome = 'S' and w.return_day_idx < 0
            group by m.merchant_id
        )
        select m.merchant_id, coalesce(c.online_n, 0), coalesce(c.online_fen, 0), coalesce(c.offline_n, 0),
               coalesce(c.offline_fen, 0), coalesce(paid.n, 0), coalesce(paid.fen, 0),
               coalesce(c.online_fen, 0) + coalesce(c.offline_fen, 0) - coalesce(paid.fen, 0)
        from w_merchants as m
        left join credits as c using (merchant_id)
        left join paid using (merchant_id)
        order by m.merchant_id
        """
    ).fetchall()
    with open(path, "w", encoding="utf-8") as f:
        f.write("merchant_id,online_recharges,online_recharge_fen,offline_recharges,offline_recharge_fen,"
                "withdrawals_paid,withdrawn_fen,balance_fen\n")
        for r in rows:
            f.write(",".join(str(x) for x in r) + "\n")


def _merchant_clearing_truth(con, path: Path) -> None:
    """What each merchant is owed once the world has closed: its reconciled payments and refunds (frozen refunds,
    mismatches and one-sided lines never clear) less our fee per its plan; one row per merchant."""
    rows = con.execute(
        """
        select merchant_id, count(*) filter (where kind = 'payment'),
               coalesce(sum(amount_fen) filter (where kind = 'payment'), 0),
               count(*) filter (where kind = 'refund'),
               coalesce(-sum(amount_fen) filter (where kind = 'refund'), 0), sum(fee_fen),
               sum(amount_fen) - sum(fee_fen)
        from cleared group by merchant_id order by merchant_id
        """
    ).fetchall()
    with open(path, "w", encoding="utf-8") as f:
        f.write("merchant_id,payments,gross_fen,refunds,refund_fen,merchant_fee_fen,net_fen\n")
        for r in rows:
            f.write(",".join(str(x) for x in r) + "\n")


def _settlement_truth(con, path: Path) -> None:
    """Each settlement batch: its net, what it pays (after a shortfall carried in) and what its payouts paid by the
    end of the world."""
    rows = con.execute(
        """
        select b.settlement_batch_id, b.merchant_id, b.cleared_on, b.due_on, b.amount_fen, b.payable_fen,
               coalesce(sum(p.amount_fen) filter (where p.outcome = 'S' and p.return_day_idx < 0), 0) as paid_fen
        from batches as b left join w_payouts as p using (settlement_batch_id)
        group by all order by b.settlement_batch_id
        """
    ).fetchall()
    with open(path, "w", encoding="utf-8") as f:
        f.write("settlement_batch_id,merchant_id,cleared_on,due_on,amount_fen,payable_fen,paid_fen\n")
        for r in rows:
            f.write(",".join(str(x) for x in r) + "\n")


def _internal_dumps(con, p: WorldParams, d: dt.date, when: dt.datetime, out: Path) -> list[Delivery]:
    """MySQL-style CSV exports with a header: created that day, with the status at export time."""
    di = (d - p.start_date).days
    base = _delivery_dir(when.date()) + "/internal"
    csv_q = "'\"' || replace({}, '\"', '\"\"') || '\"'"
    subject = f"case when biz_type = 'RECHARGE' then '{RECHARGE_PRODUCT}' else {PRODUCTS}[(pay_seq % 8) + 1] end"
    payments = f"""
        select concat_ws(',', order_id, merchant_id, channel,
            case when internal_status = 'SUCCESS' then channel_serial else '' end, amount_fen::varchar, 'CNY',
            internal_status, ts(created_s), case when internal_status = 'SUCCESS' then ts(paid_s) else '' end,
            'o' || right(payer_openid, 8), {csv_q.format(subject)}, biz_type) as line
        from pay where in_internal and created_day_idx = {di} order by created_s, pay_seq
    """
    refunds = f"""
        select concat_ws(',', refund_id, order_id, merchant_id, channel, amount_fen::varchar, 'CNY', 'SUCCESS',
            ts(requested_s), ts(requested_s + 30), refund_no::varchar) as line
        from ref where bill_date = '{d}' order by requested_s, refund_seq
    """
    # Payouts: one row per state change that day (created, and later final / returned), with updated_at.
    payouts = f"""
        with events as (
            select payout_seq, merchant_idx, amount_fen, settlement_batch_id, biz_type, submitted_s as created_s,
                   submitted_s as updated_s,
                   case when final_day_idx > day_idx then 'PROCESSING'
                        when outcome = 'F' then 'FAILED' else 'SUCCESS' end as status
            from w_payouts where day_idx = {di}
            union all
            select payout_seq, merchant_idx, amount_fen, settlement_batch_id, biz_type, submitted_s,
                   submitted_s + 86400,
                   case when outcome = 'F' then 'FAILED' else 'SUCCESS' end
            from w_payouts where final_day_idx = {di} and final_day_idx > day_idx
            union all
            select payout_seq, merchant_idx, amount_fen, settlement_batch_id, biz_type, submitted_s,
                   {_day_seconds(d)} + 11 * 3600 + payout_seq % 3600, 'RETURNED'
            from w_payouts where return_day_idx = {di}
        )
        select concat_ws(',', payout_id(payout_seq), m.merchant_id, amount_fen::varchar, 'CNY', status,
            payer_account(payout_seq + 900000), payer_name(payout_seq), ts(created_s), ts(updated_s),
            settlement_batch_id, biz_type) as line
        from events inner join w_merchants as m using (merchant_idx) order by updated_s, payout_seq
    """
    recharges = f"""
        select concat_ws(',', recharge_id(recharge_seq), m.merchant_id, amount_fen::varchar, 'CNY', 'PENDING',
            payer_name(recharge_seq + 1000), payer_account(recharge_seq + 1000), remark_code(recharge_seq),
            ts(applied_s)) as line
        from w_recharges inner join w_merchants as m using (merchant_idx)
        where day_idx = {di} and anomaly <> 'recharge_unclaimed' order by applied_s, recharge_seq
    """
    heads = {
        "payments": "order_id,merchant_id,channel,channel_serial,amount_fen,currency,status,created_at,paid_at,"
        "payer_id,subject,biz_type",
        "refunds": "refund_id,order_id,merchant_id,channel,amount_fen,currency,status,requested_at,succeeded_at,"
        "refund_no",
        "payouts": "payout_id,merchant_id,amount_fen,currency,status,account_no,account_name,created_at,updated_at,"
        "settlement_batch_id,biz_type",
        "recharges": "recharge_id,merchant_id,amount_fen,currency,status,payer_name,payer_account,remark_code,"
        "applied_at",
    }
    bodies = {"payments": payments, "refunds": refunds, "payouts": payouts, "recharges": recharges}
    dumps = []
    for name in heads:
        dumps.append(Delivery(f"{base}/internal_{name}_{d:%Y%m%d}.csv", when))
        with open(_target(out, dumps[-1]), "wb") as f:
            f.write((heads[name] + "\n").encode("utf-8"))
            _write_lines(con, bodies[name], f)
    return dumps


def _payout_result(con, p: WorldParams, d: dt.date, when: dt.datetime, out: Path) -> Delivery:
    """The bank's payout result file (回盘): header line, then S/F/P rows; later files carry finals and returns."""
    di = (d - p.start_date).days
    rows_sql = f"""
        select payout_seq, amount_fen, submitted_s as t,
               case when final_day_idx > day_idx then 'P' else outcome end as st
        from w_payouts where day_idx = {di}
        union all
        select payout_seq, amount_fen, submitted_s + 86400, outcome from w_payouts
        where final_day_idx = {di} and final_day_idx > day_idx
        union all
        select payout_seq, amount_fen, {_day_seconds(d)} + 11 * 3600 + payout_seq % 3600, 'R' from w_payouts
        where return_day_idx = {di}
    """
    body = f"""
        select concat_ws('|', 'D', row_number() over (order by t, payout_seq)::varchar, payout_id(payout_seq),
            payer_account(payout_seq + 900000), left(payer_name(payout_seq), 1) || '*', amount_fen::varchar, 'CNY',
            st, case st when 'F' then '3012' when 'R' then '4001' else '0000' end,
            case st when 'S' then '交易成功' when 'F' then '户名与账号不符' when 'R' then '退票:账户已销户'
                    else '处理中' end,
            case when st in ('S', 'R') then 'BK' || digits(payout_seq, 14) else '' end,
            strftime(make_timestamp(t * 1000000), '%Y%m%d%H%M%S')) as line
        from ({rows_sql}) order by t, payout_seq
    """
    h = con.execute(
        f"""select count(*), coalesce(sum(amount_fen), 0), count(*) filter (where st = 'S'),
            coalesce(sum(amount_fen) filter (where st = 'S'), 0), count(*) filter (where st = 'F'),
            coalesce(sum(amount_fen) filter (where st = 'F'), 0) from ({rows_sql})"""
    ).fetchall()[0]
    batch = f"B{d:%Y%m%d}{di + 1:06d}"
    head = f"H|{batch}|{d:%Y%m%d}|" + "|".join(str(int(x)) for x in h)
    dl = Delivery(f"{_delivery_dir(when.date())}/bank/PAYOUT_{PAYOUT_ACCOUNT_NO}_{batch}_{d:%Y%m%d}_RESULT.txt", when)
    with open(_target(out, dl), "wb") as f:
        f.write((head + "\r\n").encode("gbk"))
        _write_lines(con, body, f, eol="\r\n", encoding="gbk")
    return dl


def _bank_statement(con, p: WorldParams, d: dt.date, when: dt.datetime, opening_fen: int,
                    out: Path) -> tuple[Delivery, int]:
    """Our settlement account's statement for day d (GBK CSV, header block, thousands separators, 合计 row).

    Credits: each channel's net for bill date d-1 per merchant account (T+1), offline recharges, payout returns.
    Debits: successful payouts, and a channel's net for d-1 when it is negative. No order ids anywhere: matching
    works on remarks, accounts, names and amounts.
    """
    di = (d - p.start_date).days
    day_s = _day_seconds(d)
    prev = d - dt.timedelta(days=1)
    settle = f"""
        select merchant_idx, channel, sum(amount_fen) - sum(fee_fen) as net
        from (
            select merchant_idx, 'wechat' as channel, * exclude (merchant_idx)
            from ({_channel_lines_sql('wechat')}) where status = 'SUCCESS'
            union all by name
            select merchant_idx, 'alipay' as channel, * exclude (merchant_idx) from ({_channel_lines_sql('alipay')})
            union all by name
            select merchant_idx, 'unionpay' as channel, * exclude (merchant_idx)
            from ({_channel_lines_sql('unionpay')})
        ) where bill_date = '{prev}' group by all
    """
    payers = " ".join(
        f"when '{c}' then '{n}|{a}'" for c, (n, a) in SETTLEMENT_PAYERS.items()
    )
    entries = f"""
        select {day_s} + 6 * 3600 + merchant_idx * 60 + (case channel when 'wechat' then 1 when 'alipay' then 2
               else 3 end) as t,
               -- a bill day that nets negative (refunds over payments) is collected from our account: a debit
               greatest(-net, 0) as debit, greatest(net, 0) as credit,
               split_part(case channel {payers} end, '|', 1) as name,
               split_part(case channel {payers} end, '|', 2) as account, '清算资金' as bank, '结算款' as summary,
               upper(left(channel, 2)) || '结算 ' || strftime(date '{prev}', '%Y%m%d') || ' ' ||
               (select case s.channel when 'wechat' then m.wechat_mch_id when 'alipay' then m.alipay_pid
                       else m.unionpay_mer_id end from w_merchants as m where m.merchant_idx = s.merchant_idx)
               as remark, 1 as ord, merchant_idx as seq
        from ({settle}) as s where net <> 0
        union all
        select credit_s, 0, amount_fen, payer_name(recharge_seq + 1000) || (case when recharge_seq % 7 = 3
               then '（个人）' else '' end), payer_account(recharge_seq + 1000), '中国工商银行', '跨行转入',
               case anomaly when 'recharge_remark_missing' then ''
                    when 'recharge_remark_mistyped' then overlay(remark_code(recharge_seq) placing 'X'
                         from mistype_pos + 2 for 1)
                    else '充值 ' || remark_code(recharge_seq) end, 2, recharge_seq
        from w_recharges where day_idx = {di} and anomaly <> 'recharge_no_credit'
        union all
        select submitted_s + 120 + (final_day_idx - day_idx) * 86400, amount_fen, 0, payer_name(payout_seq),
               payer_account(payout_seq + 900000), '中国建设银行', '代付', '代付 ' || payout_id(payout_seq), 3,
               payout_seq
        from w_payouts where outcome = 'S' and final_day_idx = {di}
        union all
        select {day_s} + 11 * 3600 + payout_seq % 3600 + 60, 0, amount_fen, payer_name(payout_seq),
               payer_account(payout_seq + 900000), '中国建设银行', '退汇', '退票 ' || payout_id(payout_seq), 4,
               payout_seq
        from w_payouts where return_day_idx = {di}
    """
    body = f"""
        with e as (select *, row_number() over (order by t, ord, seq) as rn from ({entries})),
        b as (select *, {opening_fen} + sum(credit - debit) over (order by rn) as balance from e)
        select concat_ws(',', strftime(make_timestamp(t * 1000000), '%Y-%m-%d'),
            strftime(make_timestamp(t * 1000000), '%H:%M:%S'),
            -- transfers after 17:15 are booked the next day
            strftime(make_timestamp(t * 1000000) + case when strftime(make_timestamp(t * 1000000), '%H:%M')
                > '17:15' then interval 1 day else interval 0 day end, '%Y-%m-%d'),
            case when debit = 0 then '' else '"' || yuan_thousands(debit) || '"' end,
            case when credit = 0 then '' else '"' || yuan_thousands(credit) || '"' end,
            '"' || yuan_thousands(balance) || '"', name, account, bank, summary, remark,
            'CMB' || strftime(date '{d}', '%Y%m%d') || lpad(rn::varchar, 8, '0')) as line
        from b order by rn
    """
    tot = con.execute(f"select coalesce(sum(debit), 0), coalesce(sum(credit), 0) from ({entries})").fetchall()[0]
    y = lambda f: con.execute(f"select yuan_thousands({int(f)})").fetchall()[0][0]  # noqa: E731
    head = (
        f"账号:,{OUR_BANK_ACCOUNT},户名:,{OUR_COMPANY},币种:,人民币\r\n"
        f"起始日期:,{d:%Y-%m-%d},终止日期:,{d:%Y-%m-%d}\r\n"
        f"{BANK_HEADER}\r\n"
    )
    total = f'合计,,,"{y(tot[0])}","{y(tot[1])}",,,,,,,\r\n'
    closing = opening_fen + int(tot[1]) - int(tot[0])
    dl = Delivery(f"{_delivery_dir(when.date())}/bank/bank_statement_{OUR_BANK_ACCOUNT}_{d:%Y%m%d}.csv", when)
    with open(_target(out, dl), "wb") as f:
        f.write(head.encode("gbk"))
        _write_lines(con, body, f, eol="\r\n", encoding="gbk")
        f.write(total.encode("gbk"))
    return dl, closing
