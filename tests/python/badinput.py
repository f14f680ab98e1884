"""Landing test helpers: real simulated files to mutate, one-file landings, reading the lake, line conservation.

Every bad input is built from a file the simulator wrote (the session `world` fixture), so the corpus follows the
formats when they change. Text files are handled as lists of physical lines without their line ends.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pyarrow.parquet as pq
from tally.land import LandResult, init_lake, land_file

# ---------------------------------------------------------------------------------------------------------------
# Real files from the simulated world
# ---------------------------------------------------------------------------------------------------------------


def world_file(world: Path, channel: str, glob: str) -> Path:
    """The first (sorted) delivered file of a channel matching glob, skipping WeChat 'no bill' bodies and files with
    fewer than two records (the first day's payout file is empty: nothing is due yet)."""
    for p in sorted(world.glob(f"landing/*/{channel}/{glob}")):
        data = p.read_bytes()
        if not data.startswith(b"<xml>") and (data.count(b"\n") >= 3 or p.suffix == ".zip"):
            return p
    raise LookupError(f"no {channel}/{glob} in {world}")


WECHAT = ("wechat", "wechat_*_ALL.csv", "utf-8", "\n")
ALIPAY = ("alipay", "*0156_*.csv.zip", None, None)
UNIONPAY = ("unionpay", "*_????????.zip", None, None)
PAYOUT = ("bank", "PAYOUT_*_RESULT.txt", "gbk", "\r\n")
STATEMENT = ("bank", "bank_statement_*.csv", "gbk", "\r\n")
INTERNAL = ("internal", "internal_payments_*.csv", "utf-8", "\n")
ALL_FORMATS = {"wechat": WECHAT, "alipay": ALIPAY, "unionpay": UNIONPAY, "payout": PAYOUT, "statement": STATEMENT,
               "internal": INTERNAL}


def text_file(world: Path, kind: tuple) -> tuple[str, list[str]]:
    """(file name, physical lines) of a text format: WECHAT, PAYOUT, STATEMENT or INTERNAL."""
    channel, glob, encoding, eol = kind
    p = world_file(world, channel, glob)
    text = p.read_bytes().decode(encoding)
    assert text.endswith(eol)
    return p.name, text[: -len(eol)].split(eol)


def wechat_text(world: Path) -> tuple[str, str]:
    p = world_file(world, *WECHAT[:2])
    return p.name, p.read_text("utf-8")


def encode(kind: tuple, lines: list[str], eol: str | None = None) -> bytes:
    _, _, encoding, default_eol = kind
    eol = eol or default_eol
    return (eol.join(lines) + eol).encode(encoding)


def wechat_cells(line: str) -> list[str]:
    """A WeChat bill line's cells without their anti-Excel backticks."""
    return [c[1:] if c.startswith("`") else c for c in line.split(",")]


def wechat_line(cells: list[str]) -> str:
    return ",".join("`" + c for c in cells)


def zip_members(path_or_bytes: Path | bytes) -> dict[str, bytes]:
    data = path_or_bytes.read_bytes() if isinstance(path_or_bytes, Path) else path_or_bytes
    with zipfile.ZipFile(io.BytesIO(data), metadata_encoding="gbk") as zf:
        return {i.filename: zf.read(i) for i in zf.infolist()}


def make_zip(members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=compression) as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0)), data, compress_type=compression)
    return buf.getvalue()


def alipay_file(world: Path) -> tuple[str, dict[str, bytes], str, list[str]]:
    """(zip name, members, detail member name, detail lines decoded from GBK)."""
    p = world_file(world, *ALIPAY[:2])
    members = zip_members(p)
    detail = next(k for k in members if k.endswith("_业务明细.csv"))
    text = members[detail].decode("gbk")
    eol = "\r\n" if "\r\n" in text else "\n"
    return p.name, members, detail, text[: -len(eol)].split(eol)


def alipay_zip(members: dict[str, bytes], detail: str, lines: list[str], encoding: str = "gbk") -> bytes:
    eol = "\r\n" if b"\r\n" in members[detail] else "\n"
    return make_zip({**members, detail: (eol.join(lines) + eol).encode(encoding)})


def alipay_row(lines: list[str]) -> int:
    """Index of the first Alipay detail line (after the # block and the header)."""
    return next(i for i, ln in enumerate(lines) if not ln.startswith("#")) + 1


# ---------------------------------------------------------------------------------------------------------------
# Landing one file and reading the lake back
# ---------------------------------------------------------------------------------------------------------------


def land_bytes(lake: Path, name: str, data: bytes) -> LandResult:
    """Deliver data as `name` into an inbox next to the lake and land that one file."""
    inbox = lake.with_name(lake.name + "-inbox")
    (inbox / name).parent.mkdir(parents=True, exist_ok=True)
    (inbox / name).write_bytes(data)
    init_lake(lake)
    return land_file(inbox / name, inbox, lake)


def _rows(files) -> list[dict]:
    return [r for f in sorted(files) if not f.name.startswith(("_", ".")) for r in pq.read_table(f).to_pylist()]


def ledger(lake: Path) -> list[dict]:
    return _rows((lake / "ledger").glob("*.parquet"))


def quarantine(lake: Path) -> list[dict]:
    return _rows((lake / "quarantine").glob("*.parquet"))


def raw_rows(lake: Path, file_version_id: str | None = None) -> list[dict]:
    rows = _rows((lake / "raw").glob("*/*/*.parquet"))
    return [r for r in rows if file_version_id is None or r["file_version_id"] == file_version_id]


def q_rows(lake: Path) -> list[tuple[int, int, str, str]]:
    """Quarantine as (line_no, line_span, reason_code, masked_line), in line order."""
    return sorted((q["line_no"], q["line_span"], q["reason_code"], q["masked_line"]) for q in quarantine(lake))


def lake_snapshot(lake: Path) -> dict[str, list]:
    """Every Parquet file's rows (ledger without the landing wall-clock time), keyed by relative path."""
    snap = {}
    for f in sorted(lake.rglob("*.parquet")):
        rows = pq.read_table(f).to_pylist()
        for r in rows:
            r.pop("landed_at", None)
        snap[f.relative_to(lake).as_posix()] = sorted(rows, key=repr)
    return snap


def without_lineage(rows: list[dict]) -> list[dict]:
    """Raw rows without file_version_id: what two deliveries of the same content must share."""
    return [{k: v for k, v in r.items() if k != "file_version_id"} for r in rows]


# ---------------------------------------------------------------------------------------------------------------
# Line conservation: the invariant every landing test checks
# ---------------------------------------------------------------------------------------------------------------


def assert_conserved(lake: Path, *results: LandResult) -> list[dict]:
    """Per ledger row: a landed file's lines are detail + quarantined + other, and the raw Parquet and quarantine
    hold exactly those lines; a rejected file left no raw or quarantine rows. Each result's counts match the lake.
    Returns the ledger rows."""
    rows = ledger(lake)
    raw, quar = raw_rows(lake), quarantine(lake)
    landed_versions = {r["file_version_id"] for r in rows if r["status"] == "landed"}
    for row in rows:
        fv = row["file_version_id"]
        mine_raw = [r for r in raw if r["file_version_id"] == fv]
        mine_q = [q for q in quar if q["file_version_id"] == fv]
        if row["status"] == "landed":
            assert row["reject_reason"] is None
            assert row["lines_total"] == row["lines_detail"] + row["lines_quarantined"] + row["lines_other"], row
            assert sum(r["line_span"] for r in mine_raw) == row["lines_detail"], row
            assert sum(q["line_span"] for q in mine_q) == row["lines_quarantined"], row
            assert len({r["line_no"] for r in mine_raw} | {q["line_no"] for q in mine_q}) == len(mine_raw) + len(
                mine_q), "a line is both staged and quarantined"
        else:
            assert row["status"] == "rejected" and row["reject_reason"], row
            assert row["lines_total"] is None and row["lines_detail"] is None
            if fv not in landed_versions:
                assert not mine_raw and not mine_q
                assert not list((lake / "raw").glob(f"*/*/{fv}.parquet"))
                assert not (lake / "quarantine" / f"{fv}.parquet").exists()
    for res in results:
        mine = [r for r in rows if r["source_path"] == res.path]
        assert mine, f"no ledger row for {res.path}"
        if len(mine) > 1:  # the same name delivered with other bytes: the counts are checked per row above
            continue
        row = mine[0]
        assert row["status"] == {"duplicate": "landed", "already_landed": "landed"}.get(res.status, res.status)
        if res.status in ("landed", "duplicate"):
            fv = row["file_version_id"]
            assert res.detail == len([r for r in raw if r["file_version_id"] == fv])
            assert res.quarantined == len([q for q in quar if q["file_version_id"] == fv])
            assert res.other == row["lines_other"]
        elif res.status == "rejected":
            assert res.message == row["reject_reason"]
            assert (res.detail, res.quarantined, res.other) == (0, 0, 0)
    return rows
