"""Format registry: how each delivered file is recognised, split into lines, mapped and validated.

Every format maps header names (as the channel prints them, incl. legacy and full/half-width variants) to canonical
ASCII column names. Parsing never guesses: a pinned dialect per format, explicit columns, everything kept as text.
"""

from __future__ import annotations

import dataclasses
import re

# Strict value patterns, checked before any cast (reliability-anchors.md §6.4).
YUAN = r"^-?\d{1,15}\.\d{2}$"
YUAN5 = r"^-?\d{1,13}\.\d{5}$"
YUAN_THOUSANDS = r"^-?\d{1,3}(,\d{3})*\.\d{2}$"  # bank exports only
FEN = r"^\d{1,15}$"
DATETIME = r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$"
DATE = r"^\d{4}-\d{2}-\d{2}$"
TIME = r"^\d{2}:\d{2}:\d{2}$"
COMPACT_DATETIME = r"^\d{14}$"
OPT = "|^$"  # appended to a pattern: the value may be empty

# A date/time must also exist on the calendar: 2024-02-30 and 24:00:00 match the patterns above, and one such value
# would fail the whole dbt build at its cast. strptime format per pattern; a value must parse with it (Python's
# strptime, which is what Great Expectations' strftime expectation runs).
CALENDAR = {DATETIME: "%Y-%m-%d %H:%M:%S", DATE: "%Y-%m-%d", TIME: "%H:%M:%S", COMPACT_DATETIME: "%Y%m%d%H%M%S"}

# The same rule as a regex, exactly (a property test checks it against strptime): the year 0001-9999, the month's
# days with 29 February in leap years only, 00-23 hours, 00-59 minutes and seconds. A regex is what the landing line
# scan can check for free on well-formed lines, where strptime + strftime would cost more than the rest of landing.
_YEAR = r"(?:[0-9]{3}[1-9]|[0-9]{2}[1-9][0-9]|[0-9][1-9][0-9]{2}|[1-9][0-9]{3})"
_LEAP_YEAR = r"(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:[02468][48]|[13579][26]|[2468]0)00)"


def _ymd_regex(sep: str) -> str:
    month_day = (f"(?:(?:0[1-9]|1[0-2]){sep}(?:0[1-9]|1[0-9]|2[0-8])|(?:0[13-9]|1[0-2]){sep}(?:29|30)"
                 f"|(?:0[13578]|1[02]){sep}31)")
    return f"(?:{_YEAR}{sep}{month_day}|{_LEAP_YEAR}{sep}02{sep}29)"


def _hms_regex(sep: str) -> str:
    return f"(?:[01][0-9]|2[0-3]){sep}[0-5][0-9]{sep}[0-5][0-9]"


REAL_CALENDAR = {
    DATETIME: f"^{_ymd_regex('-')} {_hms_regex(':')}$",
    DATE: f"^{_ymd_regex('-')}$",
    TIME: f"^{_hms_regex(':')}$",
    COMPACT_DATETIME: f"^{_ymd_regex('')}{_hms_regex('')}$",
}

# A row's time must fall in [bill date - 366 days, bill date + 2 days): a day's file may carry refunds of old
# payments and a channel's day may start the evening before, but never a time after the following day (bad input #35).
BILL_WINDOW_DAYS_BEFORE = 366
BILL_WINDOW_DAYS_AFTER = 2


@dataclasses.dataclass(frozen=True)
class Column:
    name: str  # canonical name in raw Parquet
    headers: tuple[str, ...] = ()  # header spellings that map to it
    pattern: str | None = None  # strict regex the (trimmed) text must match
    is_id: bool = False  # an identifier: E-notation here means Excel damaged the file
    required: bool = True  # must exist in the header (legacy layouts lack some)

    @property
    def calendar(self) -> str | None:
        """strptime format when the column holds a date and/or time."""
        return CALENDAR.get(self.pattern.removesuffix(OPT)) if self.pattern else None

    @property
    def real_pattern(self) -> str | None:
        """The pattern a value must match to exist on the calendar as well (`pattern` itself for other columns): a
        subset of `pattern`, keeping its `OPT` (the empty value)."""
        if not self.calendar:
            return self.pattern
        base = self.pattern.removesuffix(OPT)
        return REAL_CALENDAR[base] + self.pattern[len(base):]


@dataclasses.dataclass(frozen=True)
class Format:
    name: str
    channel: str
    bill_type: str
    columns: tuple[Column, ...]
    amount_column: str | None = None  # the column used for control totals / conservation
    window_column: str | None = None  # the date/time column that must fall in the bill window

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def header_map(self) -> dict[str, str]:
        m = {}
        for c in self.columns:
            for h in c.headers or (c.name,):
                m[normalise_header(h)] = c.name
        return m


def normalise_header(h: str) -> str:
    """Full-width brackets and stray spaces are the usual header drift; compare on a normalised form."""
    return h.strip().replace("（", "(").replace("）", ")").replace(" ", "").lstrip("\ufeff")


C = Column
WECHAT_TRADE = Format(
    "wechat_trade_bill",
    "wechat",
    "ALL",
    (
        C("trade_time", ("交易时间",), DATETIME),
        C("app_id", ("公众账号ID",)),
        C("mch_id", ("商户号",), r"^\d{8,10}$", is_id=True),
        C("sub_mch_id", ("特约商户号", "子商户号")),
        C("device_info", ("设备号",)),
        C("transaction_id", ("微信订单号",), r"^\d{28}$", is_id=True),
        C("out_trade_no", ("商户订单号",), r"^[A-Za-z0-9_\-|*]{1,32}$", is_id=True),
        C("openid", ("用户标识",)),
        C("trade_type", ("交易类型",)),
        C("trade_state", ("交易状态",), r"^(SUCCESS|REFUND|REVOKED)$"),
        C("bank_type", ("付款银行",)),
        C("currency", ("货币种类",), r"^CNY$"),
        C("settlement_amount", ("应结订单金额", "总金额"), YUAN),
        C("coupon_amount", ("代金券金额", "企业红包金额", "代金券或立减优惠金额"), YUAN),
        C("refund_id", ("微信退款单号",), r"^(0|\d{20,32})$", is_id=True),
        C("out_refund_no", ("商户退款单号",), r"^[A-Za-z0-9_\-|*]{1,64}$", is_id=True),
        C("refund_amount", ("退款金额",), YUAN),
        C("coupon_refund_amount", ("充值券退款金额", "企业红包退款金额", "代金券或立减优惠退款金额"), YUAN),
        C("refund_type", ("退款类型",)),
        C("refund_status", ("退款状态",), r"^(SUCCESS|PROCESSING|FAIL|CHANGE)?$"),
        C("body", ("商品名称",)),
        C("attach", ("商户数据包",)),
        C("fee", ("手续费",), YUAN5),
        C("rate", ("费率",), r"^\d{1,2}\.\d{2}%$"),
        C("order_amount", ("订单金额",), YUAN, required=False),
        C("requested_refund_amount", ("申请退款金额",), YUAN, required=False),
        C("rate_remark", ("费率备注",), required=False),
    ),
    amount_column="settlement_amount",
    window_column="trade_time",
)

ALIPAY_TRADE = Format(
    "alipay_trade_bill",
    "alipay",
    "trade",
    (
        C("trade_no", ("支付宝交易号",), r"^\d{20,32}$", is_id=True),
        C("out_trade_no", ("商户订单号",), r"^[A-Za-z0-9_\-]{1,64}$", is_id=True),
        C("biz_type", ("业务类型",), r"^(交易|退款)$"),
        C("subject", ("商品名称",)),
        C("created_at", ("创建时间",), DATETIME),
        C("finished_at", ("完成时间",), DATETIME),
        C("store_id", ("门店编号",)),
        C("store_name", ("门店名称",)),
        C("operator", ("操作员",)),
        C("terminal_id", ("终端号",)),
        C("buyer_account", ("对方账户",)),
        C("order_amount", ("订单金额(元)",), YUAN),
        C("receipt_amount", ("商家实收(元)",), YUAN),
        C("alipay_red_packet", ("支付宝红包(元)",), YUAN),
        C("jifenbao", ("集分宝(元)",), YUAN),
        C("alipay_discount", ("支付宝优惠(元)",), YUAN),
        C("merchant_discount", ("商家优惠(元)",), YUAN),
        C("coupon_amount", ("券核销金额(元)",), YUAN),
        C("coupon_name", ("券名称",)),
        C("merchant_red_packet", ("商家红包消费金额(元)",), YUAN),
        C("card_amount", ("卡消费金额(元)",), YUAN),
        C("refund_request_no", ("退款批次号/请求号", "退款批次号"), r"^[A-Za-z0-9_\-]{0,64}$", is_id=True),
        C("service_fee", ("服务费(元)",), YUAN),
        C("royalty", ("分润(元)",), YUAN),
        C("remark", ("备注",)),
    ),
    amount_column="receipt_amount",
    window_column="finished_at",
)

# UnionPay ZM: (name, byte offset, width, pattern). channel-formats.md §3.2.
UNIONPAY_ZM_FIELDS = (
    ("trade_code", 0, 3, None),
    ("acq_ins_code", 4, 11, None),
    ("send_ins_code", 16, 11, None),
    ("trace_no", 28, 6, r"^\d{6}$"),
    ("txn_time", 35, 10, r"^\d{10}$"),
    ("pay_card_no", 46, 19, None),
    ("txn_amt", 66, 12, r"^\d{12}$"),
    ("mer_cat_code", 79, 4, None),
    ("term_type", 84, 2, None),
    ("query_id", 87, 21, r"^\d{21}$"),
    ("old_pay_type", 109, 2, None),
    ("order_id", 112, 32, r"^[A-Za-z0-9_\-]{1,32}$"),
    ("pay_card_type", 145, 2, None),
    ("orig_trace_no", 148, 6, None),
    ("orig_txn_time", 155, 10, None),
    ("mer_charge", 166, 13, r"^[CD]\d{12}$"),
    ("settle_amt", 180, 13, r"^[CD]\d{12}$"),
    ("pay_type", 194, 4, None),
    ("group_mer_code", 199, 15, None),
    ("txn_type", 215, 2, r"^(01|02|03|04|11|12|31|32|33)$"),
    ("txn_sub_type", 218, 2, None),
    ("biz_type", 221, 6, None),
    ("acc_type", 228, 2, None),
    ("bill_type", 231, 4, None),
    ("bill_no", 236, 32, None),
    ("interact_mode", 269, 1, None),
    ("orig_qry_id", 271, 21, r"^(\d{21})?$"),
    ("mer_id", 293, 15, r"^\d{15}$"),
    ("account_type", 309, 1, None),
    ("sub_mer_id", 311, 15, None),
    ("sub_mer_abbr", 327, 32, None),
    ("sub_mer_acct_amt", 360, 13, None),
    ("settle_net_amt", 374, 13, r"^([CD]\d{12})?$"),
    ("term_id", 388, 8, None),
    ("mer_reserved", 397, 32, None),
    ("discount_amt", 430, 13, None),
    ("invoice_amt", 444, 13, None),
    ("ins_addition_charge", 458, 12, None),
    ("installment_num", 471, 2, None),
    ("trade_media", 474, 1, None),
    ("orig_order_id", 476, 32, None),
    ("reserved", 509, 98, None),
)
UNIONPAY_ZM_LINE_BYTES = 607
UNIONPAY_ZM = Format(
    "unionpay_zm",
    "unionpay",
    "ZM",
    tuple(C(n, (), p, is_id=n in ("query_id", "orig_qry_id", "order_id")) for n, _, _, p in UNIONPAY_ZM_FIELDS),
    amount_column="txn_amt",
)

BANK_PAYOUT_RESULT = Format(
    "bank_payout_result",
    "bank",
    "payout_result",
    (
        C("record_type", (), r"^D$"),
        C("seq", (), r"^\d{1,9}$"),
        C("payout_id", (), r"^[A-Za-z0-9_\-]{1,32}$", is_id=True),
        C("account_no", (), r"^[\d*]{8,32}$"),
        C("account_name", ()),
        C("amount_fen", (), FEN),
        C("currency", (), r"^CNY$"),
        C("status", (), r"^[SFPR]$"),
        C("bank_code", ()),
        C("message", ()),
        C("bank_serial", (), r"^[A-Za-z0-9]{0,32}$", is_id=True),
        C("finished_at", (), COMPACT_DATETIME),
    ),
    amount_column="amount_fen",
    window_column="finished_at",
)

BANK_STATEMENT = Format(
    "bank_statement",
    "bank",
    "statement",
    (
        C("txn_date", ("交易日期",), DATE),
        C("txn_time", ("交易时间",), TIME),
        C("booking_date", ("记账日期", "入账日期", "记帐日期"), DATE),
        C("debit_amount", ("借方发生额", "借方金额", "支出金额"), YUAN_THOUSANDS + OPT),
        C("credit_amount", ("贷方发生额", "贷方金额", "收入金额"), YUAN_THOUSANDS + OPT),
        C("balance", ("余额",), YUAN_THOUSANDS),
        C("counterparty_name", ("对方户名", "对方账户名称", "收(付)方名称", "对方名称")),
        C("counterparty_account", ("对方账号", "对方账户", "收(付)方账号", "对方帐号"), r"^[\d*]{6,32}$|^$"),
        C("counterparty_bank", ("对方开户行", "收(付)方开户行名")),
        C("summary", ("摘要",)),
        C("remark", ("附言", "用途", "备注")),
        C("bank_serial", ("交易流水号", "流水号"), r"^[A-Za-z0-9]{6,40}$", is_id=True),
    ),
    amount_column=None,
    window_column="txn_date",
)


def _internal(name: str, cols: tuple[Column, ...], window: str, amount: str | None = "amount_fen") -> Format:
    return Format(f"internal_{name}", "internal", name, cols, amount_column=amount, window_column=window)


ORDER_ID = r"^[A-Za-z0-9_\-]{1,32}$"
INTERNAL_PAYMENTS = _internal(
    "payments",
    (
        C("order_id", (), ORDER_ID, is_id=True),
        C("merchant_id", (), r"^M\d{4}$"),
        C("channel", (), r"^(wechat|alipay|unionpay)$"),
        C("channel_serial", (), r"^\d{20,32}$|^$", is_id=True),
        C("amount_fen", (), FEN),
        C("currency", (), r"^CNY$"),
        C("status", (), r"^(SUCCESS|PROCESSING|FAILED|CLOSED)$"),
        C("created_at", (), DATETIME),
        C("paid_at", (), DATETIME + OPT),
        C("payer_id", ()),
        C("subject", ()),
        # what the payment is for: TRADE (a sale, cleared to the merchant) or RECHARGE (the merchant topping up its
        # prepaid balance online); older dumps lack the column and hold trades only
        C("biz_type", (), r"^(TRADE|RECHARGE)$|^$", required=False),
    ),
    "created_at",
)
INTERNAL_REFUNDS = _internal(
    "refunds",
    (
        C("refund_id", (), ORDER_ID, is_id=True),
        C("order_id", (), ORDER_ID, is_id=True),
        C("merchant_id", (), r"^M\d{4}$"),
        C("channel", (), r"^(wechat|alipay|unionpay)$"),
        C("amount_fen", (), FEN),
        C("currency", (), r"^CNY$"),
        C("status", (), r"^(SUCCESS|PROCESSING|FAILED)$"),
        C("requested_at", (), DATETIME),
        C("succeeded_at", (), DATETIME + OPT),
        C("refund_no", (), r"^\d{1,3}$"),
    ),
    "requested_at",
)
INTERNAL_PAYOUTS = _internal(
    "payouts",
    (
        C("payout_id", (), ORDER_ID, is_id=True),
        C("merchant_id", (), r"^M\d{4}$"),
        C("amount_fen", (), FEN),
        C("currency", (), r"^CNY$"),
        C("status", (), r"^(PROCESSING|SUCCESS|FAILED|RETURNED)$"),
        C("account_no", (), r"^[\d*]{8,32}$"),
        C("account_name", ()),
        C("created_at", (), DATETIME),
        C("updated_at", (), DATETIME),
        # the merchant settlement batch the payout pays (older dumps lack the column)
        C("settlement_batch_id", (), r"^SB[A-Za-z0-9]{1,40}$|^$", required=False),
        # SETTLEMENT (pays a settlement batch) or WITHDRAWAL (a merchant's withdrawal from its prepaid balance, 提现);
        # older dumps lack the column and hold settlement payouts only
        C("biz_type", (), r"^(SETTLEMENT|WITHDRAWAL)$|^$", required=False),
    ),
    "updated_at",
)
INTERNAL_RECHARGES = _internal(
    "recharges",
    (
        C("recharge_id", (), ORDER_ID, is_id=True),
        C("merchant_id", (), r"^M\d{4}$"),
        C("amount_fen", (), FEN),
        C("currency", (), r"^CNY$"),
        C("status", (), r"^(PENDING|SUCCESS|CLOSED)$"),
        C("payer_name", ()),
        C("payer_account", (), r"^[\d*]{6,32}$|^$"),
        C("remark_code", ()),
        C("applied_at", (), DATETIME),
    ),
    "applied_at",
)
# Accepted break dispositions, filed by analysts as a CSV landed like any other file (append-only decisions).
INTERNAL_DISPOSITIONS = _internal(
    "dispositions",
    (
        C("recon_key", (), r"^[A-Za-z_]+\|[^,\s]{1,200}$", is_id=True),
        C("disposition", (), r"^(refund_original_route|payout|chase_funds|ignore_out_of_system|manual_review)$"),
        C("decided_by", (), r"^\S{1,64}$"),
        C("decided_at", (), DATETIME),
        C("note", ()),
    ),
    "decided_at",
    amount=None,
)

FORMATS = {
    f.name: f
    for f in (
        WECHAT_TRADE,
        ALIPAY_TRADE,
        UNIONPAY_ZM,
        BANK_PAYOUT_RESULT,
        BANK_STATEMENT,
        INTERNAL_PAYMENTS,
        INTERNAL_REFUNDS,
        INTERNAL_PAYOUTS,
        INTERNAL_RECHARGES,
        INTERNAL_DISPOSITIONS,
    )
}

# Reason codes a quarantine row may carry (tested as accepted values in dbt).
REASONS = {
    "field_count": "the line has a different number of fields than the header",
    "pattern": "a value does not match its column's strict pattern",
    "missing_backtick": "a WeChat value lacks its leading backtick",
    "line_length": "a fixed-width line has the wrong byte length",
    "control_char": "the line contains NUL or other control characters",
    "wrong_merchant": "the row's merchant differs from the file's merchant",
    "outside_bill_window": "the row's time is outside the file's bill day",
    "line_too_long": "the line is longer than the format allows",
    "bad_datetime": "a date or time that matches the pattern but does not exist (2024-02-30, 24:00:00)",
}

SCI_NOTATION = re.compile(r"^\d(\.\d+)?[eE][+-]?\d+$")
