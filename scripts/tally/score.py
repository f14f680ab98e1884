"""Score the reconciliation facts and the merchant clearing against the simulator's ground truth.

Every injected anomaly must come out as the break type (and proposed disposition) the ground truth names, and every
break in the facts must be explained by an anomaly: a break nobody injected is a false break. Each merchant's
cleared totals must equal, to the fen, what the simulator computed it is owed, each settlement batch its net, due
date, what it pays after a shortfall carried in from the merchant's earlier batches and what its payouts paid, and
each merchant's prepaid balance in the ledger (online and offline recharges, withdrawals) what the simulator
credited and paid. Run it on a build whose
as-of date is past every suspense window (see `closing_as_of`), or one-sided anomalies are still in suspense.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections import Counter
from pathlib import Path

import duckdb

from tally.warehouse import connect as connect_warehouse

# Anomaly kinds that concern files, not lines: scored against the file ledger.
FILE_KINDS = {"duplicate_file": "duplicate", "reissued_file": "superseded", "empty_day": "current"}


@dataclasses.dataclass
class Score:
    expected: Counter  # anomalies per expected break type
    correct: Counter  # anomalies classified as expected (break type and disposition)
    predicted: Counter  # break facts per break type (matched facts excluded)
    explained: Counter  # break facts claimed by an anomaly
    misses: list[str]  # one line per anomaly classified wrongly
    false_breaks: list[str]  # one line per break fact no anomaly explains
    clearing: list[tuple[str, tuple, tuple]] = dataclasses.field(default_factory=list)  # merchant, truth, facts
    settlement: list[tuple[str, tuple, tuple]] = dataclasses.field(default_factory=list)  # batch, truth, facts
    prepaid: list[tuple[str, tuple, tuple]] = dataclasses.field(default_factory=list)  # merchant, truth, ledger

    @property
    def clearing_misses(self) -> list[str]:
        return [f"clearing {m}: ground truth {t}, warehouse {w}" for m, t, w in self.clearing if t != w] + [
            f"settlement {b}: ground truth {t}, warehouse {w}" for b, t, w in self.settlement if t != w] + [
            f"prepaid balance {m}: ground truth {t}, ledger {w}" for m, t, w in self.prepaid if t != w]

    @property
    def perfect(self) -> bool:
        return not self.misses and not self.false_breaks and not self.clearing_misses

    def report(self) -> str:
        types = sorted(set(self.expected) | set(self.predicted))
        out = [f"{'break type':<18}{'expected':>9}{'correct':>9}{'recall':>8}{'breaks':>8}{'explained':>10}"
               f"{'precision':>10}"]
        for t in types:
            rec = self.correct[t] / self.expected[t] if self.expected[t] else 1.0
            pre = self.explained[t] / self.predicted[t] if self.predicted[t] else 1.0
            out.append(f"{t:<18}{self.expected[t]:>9}{self.correct[t]:>9}{rec:>8.1%}{self.predicted[t]:>8}"
                       f"{self.explained[t]:>10}{pre:>10.1%}")
        e, c = sum(self.expected.values()), sum(self.correct.values())
        p, x = sum(self.predicted.values()), sum(self.explained.values())
        out.append(f"{'overall':<18}{e:>9}{c:>9}{(c / e if e else 1):>8.1%}{p:>8}{x:>10}{(x / p if p else 1):>10.1%}")
        if self.clearing:
            ok = sum(t == w for _, t, w in self.clearing)
            out.append(f"merchant clearing (payments, gross, refunds, refund, fee, net in fen): {ok} of "
                       f"{len(self.clearing)} merchants equal to the fen")
        if self.settlement:
            ok = sum(t == w for _, t, w in self.settlement)
            out.append(f"settlement batches (merchant, cleared on, due on, net, payable, paid in fen): {ok} of "
                       f"{len(self.settlement)} batches equal")
        if self.prepaid:
            ok = sum(t == w for _, t, w in self.prepaid)
            out.append(f"prepaid balances (online recharges, fen, offline recharges, fen, withdrawals paid, fen, "
                       f"balance in fen): {ok} of {len(self.prepaid)} merchants equal to the fen")
        out += [f"MISS  {m}" for m in self.misses[:50] + self.clearing_misses[:50]]
        out += [f"FALSE {f}" for f in self.false_breaks[:50]]
        return "\n".join(out)


def closing_as_of(world: Path) -> dt.date:
    """An as-of date past every suspense window of the world: its last day plus a week."""
    params = json.loads((Path(world) / "world.json").read_text())["params"]
    return dt.date.fromisoformat(params["start_date"]) + dt.timedelta(days=params["days"] + 7)


def _facts(con: duckdb.DuckDBPyConnection) -> list[dict]:
    rel = con.sql(
        """
        select recon_key, recon_stream, channel, row_kind, bill_date, break_type, recon_state, proposed_disposition,
               order_id, refund_id, payout_id, recharge_id, channel_amount_fen, internal_amount_fen
        from main.fct_recon_results
        """
    )
    cols = rel.columns
    return [dict(zip(cols, r, strict=True)) for r in rel.fetchall()]


def score(world: Path, warehouse: Path) -> Score:
    truth = [json.loads(line) for line in (Path(world) / "ground_truth" / "anomalies.jsonl").read_text().splitlines()]
    con = connect_warehouse(warehouse)
    try:
        facts = _facts(con)
        files = con.sql(
            "select format, channel, merchant_key, cast(bill_date as varchar), file_status, is_empty_day "
            "from main_staging.stg_lake__file_deliveries"
        ).fetchall()
        cleared = {
            r[0]: tuple(int(x) for x in r[1:])
            for r in con.sql(
                "select merchant_id, sum(payments), sum(gross_fen), sum(refunds), sum(refund_fen), "
                "sum(merchant_fee_fen), sum(net_fen) from main.fct_merchant_clearing_daily group by merchant_id"
            ).fetchall()
        }
        batches = {
            r[0]: tuple(str(x) for x in r[1:])
            for r in con.sql(
                "select settlement_batch_id, merchant_id, cleared_on, due_on, amount_fen, payable_fen, paid_fen "
                "from main.fct_settlement_batches"
            ).fetchall()
        }
        # the prepaid balance (2204) per merchant from the ledger: what recharges credited, what withdrawals took
        # (frozen, less unfrozen and returned), how many withdrawals the bank paid and kept, and the balance
        prepaid = {
            r[0]: tuple(int(x) for x in r[1:])
            for r in con.sql(
                """
                select sub_account,
                    count(distinct journal_id) filter (
                        where account_code = '2204' and journal_type = 'online_recharge'),
                    coalesce(sum(credit_fen - debit_fen) filter (
                        where account_code = '2204' and journal_type = 'online_recharge'), 0),
                    count(distinct journal_id) filter (where account_code = '2204' and journal_type = 'recharge'),
                    coalesce(sum(credit_fen - debit_fen) filter (
                        where account_code = '2204' and journal_type = 'recharge'), 0),
                    count(distinct journal_id) filter (where journal_type = 'withdrawal_debit')
                    - count(distinct journal_id) filter (where journal_type = 'withdrawal_return'),
                    coalesce(sum(debit_fen - credit_fen) filter (where account_code = '2204' and journal_type in (
                        'withdrawal_freeze', 'withdrawal_failed', 'withdrawal_return')), 0),
                    coalesce(sum(credit_fen - debit_fen) filter (where account_code = '2204'), 0)
                from main.fct_journal_lines
                where account_code in ('2203', '2204')
                group by sub_account
                """
            ).fetchall()
        }
    finally:
        con.close()

    by_trade_key: dict[str, list[dict]] = {}
    by_payout: dict[str, list[dict]] = {}
    by_recharge: dict[str, list[dict]] = {}
    for f in facts:
        if f["recon_stream"] == "trade":
            by_trade_key.setdefault(f["refund_id"] or f["order_id"], []).append(f)
        if f["payout_id"]:
            by_payout.setdefault(f["payout_id"], []).append(f)
        if f["recharge_id"]:
            by_recharge.setdefault(f["recharge_id"], []).append(f)
    # channel-only recharge credits carry no id of ours: found by bill date and amount
    unclaimed = {(str(f["bill_date"]), f["channel_amount_fen"]): f for f in facts
                 if f["recon_stream"] == "bank_statement" and f["row_kind"] == "recharge"
                 and f["break_type"] == "channel_only"}

    expected, correct, misses = Counter(), Counter(), []
    claimed: set[str] = set()
    for t in truth:
        kind, want, want_disp = t["kind"], t["expected_break_type"], t["expected_disposition"]
        if kind in FILE_KINDS:
            status = FILE_KINDS[kind]
            ok = any(ch == t["channel"] and mk == t["key"] and bd == t["bill_date"] and st == status
                     and (kind != "empty_day" or empty) for _, ch, mk, bd, st, empty in files)
            expected[want] += 1
            if ok:
                correct[want] += 1
            else:
                misses.append(f"{kind} {t['channel']} {t['key']} {t['bill_date']}: no {status} file in the ledger")
            continue
        if t["channel"] == "bank" and t["key"].startswith("PO"):
            got = by_payout.get(t["key"], [])
        elif kind == "recharge_unclaimed":
            f = unclaimed.get((t["bill_date"], t["amount_fen"]))
            got = [f] if f else []
        elif t["channel"] == "bank":
            got = by_recharge.get(t["key"], [])
        else:
            got = by_trade_key.get(t["key"], [])
        if kind == "late_file":
            # every line of the late file must have found its partner: checked by the false-break count below
            expected[want] += 1
            correct[want] += 1
            continue
        expected[want] += 1
        types = sorted(f["break_type"] for f in got)
        hit = [f for f in got if f["break_type"] == want and f["proposed_disposition"] == want_disp]
        # a duplicated channel row: one fact is the duplicate, the other the genuine match
        rest_ok = all(f["break_type"] == "matched" for f in got if f not in hit)
        if hit and rest_ok and (want == "duplicate" or len(hit) == len(got) or want == "matched"):
            correct[want] += 1
            claimed.update(f["recon_key"] for f in got)
        else:
            dispositions = sorted(str(f["proposed_disposition"]) for f in got)
            misses.append(f"{kind} {t['channel']} {t['key']} {t['bill_date']}: expected {want}/{want_disp}, "
                          f"got {types or 'no fact'} {dispositions}")

    predicted, explained, false_breaks = Counter(), Counter(), []
    for f in facts:
        if f["break_type"] == "matched":
            continue
        predicted[f["break_type"]] += 1
        if f["recon_key"] in claimed:
            explained[f["break_type"]] += 1
        else:
            false_breaks.append(f"{f['recon_key']} {f['break_type']} ({f['recon_state']}) bill {f['bill_date']}")
    clearing = []
    truth_file = Path(world) / "ground_truth" / "merchant_clearing.csv"
    if truth_file.exists():
        for line in truth_file.read_text().splitlines()[1:]:
            mid, *values = line.split(",")
            clearing.append((mid, tuple(int(v) for v in values), cleared.get(mid)))
    settlement = []
    batch_file = Path(world) / "ground_truth" / "settlement_batches.csv"
    if batch_file.exists():
        for line in batch_file.read_text().splitlines()[1:]:
            bid, *values = line.split(",")
            settlement.append((bid, tuple(values), batches.get(bid)))
    prepaid_rows = []
    prepaid_file = Path(world) / "ground_truth" / "prepaid_balances.csv"
    if prepaid_file.exists():
        for line in prepaid_file.read_text().splitlines()[1:]:
            mid, *values = line.split(",")
            prepaid_rows.append((mid, tuple(int(v) for v in values), prepaid.get(mid)))
    return Score(expected, correct, predicted, explained, misses, false_breaks, clearing, settlement, prepaid_rows)
