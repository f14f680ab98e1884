"""`tally` command line: thin wrappers over importable functions."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from pathlib import Path


def _data_dir() -> str:
    """The data directory dbt reads the lake from (`$TALLY_DATA_DIR`, as in the dbt project), default `data`."""
    return os.environ.get("TALLY_DATA_DIR", "data")


def _warehouse() -> str:
    """The warehouse dbt writes (`$TALLY_DUCKDB_PATH`, as in profiles.yml), default `data/warehouse/tally.duckdb`."""
    return os.environ.get("TALLY_DUCKDB_PATH", "data/warehouse/tally.duckdb")


def _simulate(args: argparse.Namespace) -> int:
    from tally.simulate import WorldParams, simulate

    params = WorldParams(
        seed=args.seed,
        days=args.days,
        merchants=args.merchants,
        daily_volume=args.daily_volume,
        start_date=dt.date.fromisoformat(args.start_date),
    )
    try:
        summary = simulate(params, Path(args.out))
    except FileExistsError as e:
        print(f"simulate: {e}", file=sys.stderr)
        return 2
    print(
        f"simulated {params.days} days, {params.merchants} merchants, {summary['payments']} payments, "
        f"{summary['files']} files, {summary['anomalies']} ground-truth anomalies -> {args.out}"
    )
    return 0


def _land(args: argparse.Namespace) -> int:
    from tally.land import land

    # GX is imported (quietly: no analytics, no progress bars) only if the screen flags a value for it to judge
    results = land([Path(p) for p in args.paths], Path(args.lake), gate=not args.no_gx)
    return 1 if args.strict and any(r.status == "rejected" for r in results) else 0


def _bench(args: argparse.Namespace) -> int:
    from tally.bench import DEFAULT_PHASES, bench_land

    phases = tuple(args.phases.split(",")) if args.phases else DEFAULT_PHASES
    bench_land(args.lines, Path(args.data_dir), merchants=args.merchants, seed=args.seed, repeat=args.repeat,
               phases=phases)
    return 0


def _bench_e2e(args: argparse.Namespace) -> int:
    from tally.bench_e2e import run

    run(args.trades, Path(args.data_dir), merchants=args.merchants, seed=args.seed, skip_pandas=args.no_pandas,
        parse_floor=not args.no_parse_floor, fixed_cost=not args.no_fixed_cost)
    return 0


def _bench_recon(args: argparse.Namespace) -> int:
    from tally.bench_recon import run

    run(args.lines, Path(args.data_dir), files=args.files)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from tally.pipeline import demo
    from tally.simulate import WorldParams

    demo(Path(args.data_dir), WorldParams(seed=args.seed, days=args.days, daily_volume=args.daily_volume))
    return 0


def _score(args: argparse.Namespace) -> int:
    from tally.score import score

    result = score(Path(args.world), Path(args.warehouse))
    print(result.report())
    return 0 if result.perfect else 1


def _parity(args: argparse.Namespace) -> int:
    import dataclasses

    from tally.parity import PARITY_WORLD, parity

    params = dataclasses.replace(PARITY_WORLD, seed=args.seed, days=args.days, merchants=args.merchants,
                                 daily_volume=args.daily_volume)
    as_of = tuple(None if d == "latest" else dt.date.fromisoformat(d) for d in args.as_of or ["latest"])
    return parity(Path(args.work_dir), params, as_of)


def _archive(args: argparse.Namespace) -> int:
    from tally.archive import ArchiveError, archive

    as_of = dt.date.fromisoformat(args.as_of) if args.as_of else None
    try:
        done = archive(Path(args.warehouse), Path(args.data_dir), args.retention_days, as_of=as_of)
    except ArchiveError as e:
        print(f"archive: {e}", file=sys.stderr)
        return 1
    moved = [d for d in done if d[2].startswith("archived")]
    print(f"archive: {len(moved)} partitions archived" + (f", {len(done) - len(moved)} already archived or empty"
                                                          if len(done) > len(moved) else ""))
    return 0


def _restore(args: argparse.Namespace) -> int:
    from tally.archive import ArchiveError, restore

    try:
        n = restore(Path(args.warehouse), Path(args.data_dir), args.model, dt.date.fromisoformat(args.partition))
    except ArchiveError as e:
        print(f"restore: {e}", file=sys.stderr)
        return 1
    print(f"restore: {n} rows of {args.model} {args.partition} are hot again")
    return 0


def _publish(args: argparse.Namespace) -> int:
    from tally.pipeline import build_and_publish
    from tally.publish import PublishRefused, publish

    try:
        if args.build:
            published = build_and_publish(Path(args.data_dir), Path(args.warehouse), Path(args.serving),
                                          target_path=Path(args.target))
        else:
            published = publish(Path(args.warehouse), Path(args.serving), target=Path(args.target),
                                data_dir=Path(args.data_dir))
    except (PublishRefused, RuntimeError) as e:
        print(f"publish: {e}; the serving file is unchanged", file=sys.stderr)
        return 1
    print(f"published {len(published)} relations to {args.serving}")
    return 0


DATA_DIR_HELP = "holds lake/ (default: $TALLY_DATA_DIR, else data)"
WAREHOUSE_HELP = "the DuckDB warehouse (default: $TALLY_DUCKDB_PATH, else data/warehouse/tally.duckdb)"


def build_parser() -> argparse.ArgumentParser:
    """The command line; the lake, data directory and warehouse default to what the dbt project reads
    (`$TALLY_DATA_DIR`, `$TALLY_DUCKDB_PATH`), so the toolbelt and dbt work on the same files."""
    parser = argparse.ArgumentParser(prog="tally", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    s = sub.add_parser("simulate", help="write a deterministic payments world (channel files + ground truth)")
    s.add_argument("--out", default="data/world", help="output directory (default: data/world)")
    s.add_argument("--seed", type=int, default=42)
    s.add_argument("--days", type=int, default=3)
    s.add_argument("--merchants", type=int, default=4)
    s.add_argument("--daily-volume", type=int, default=2000, help="payments per day")
    s.add_argument("--start-date", default="2024-03-04")
    s.set_defaults(func=_simulate)

    s = sub.add_parser("land", help="land delivered files into the lake (idempotent; any order, any number of times)")
    s.add_argument("paths", nargs="+", help="files or directories to land")
    s.add_argument("--lake", default=os.path.join(_data_dir(), "lake"),
                   help="lake directory (default: $TALLY_DATA_DIR/lake, else data/lake)")
    s.add_argument("--strict", action="store_true", help="exit 1 if any file was rejected")
    s.add_argument("--no-gx", action="store_true",
                   help="skip the Great Expectations gate (the vectorised validator alone decides)")
    s.set_defaults(func=_land)

    s = sub.add_parser("bench", help="benchmarks (figures, not tests)")
    bench = s.add_subparsers(dest="what", required=True)
    b = bench.add_parser("land", help="land a simulated one-day world against a bare DuckDB read of the same lines")
    b.add_argument("--lines", type=int, default=1_000_000, help="detail lines in the day (about)")
    b.add_argument("--merchants", type=int, default=10)
    b.add_argument("--seed", type=int, default=1)
    b.add_argument("--repeat", type=int, default=1, help="runs per phase; the fastest is reported")
    b.add_argument("--phases", default="", help="comma list of baseline,land,land-nogx,land-gxall "
                                                 "(default: baseline,land,land-nogx)")
    b.add_argument("--data-dir", default="data/bench", help="cache of generated worlds (default: data/bench)")
    b.set_defaults(func=_bench)
    b = bench.add_parser("recon", help="dbt reconciliation of N + N lines against a bare DuckDB full outer join")
    b.add_argument("--lines", type=int, default=1_000_000, help="channel lines (and as many internal payments)")
    b.add_argument("--files", type=int, default=10, help="files per side")
    b.add_argument("--data-dir", default="data/bench/recon", help="where the lake and warehouse go")
    b.set_defaults(func=_bench_recon)
    b = bench.add_parser("e2e", help="a day of N trades through land, dbt run per layer, tests and publish, "
                                     "against the parse floor, the engine floor and pandas; then the same on a "
                                     "1,000-trade day (the fixed cost)")
    b.add_argument("--trades", type=int, default=1_000_000, help="payments in the day")
    b.add_argument("--merchants", type=int, default=10)
    b.add_argument("--seed", type=int, default=1)
    b.add_argument("--no-pandas", action="store_true", help="skip the pandas baseline (slow at 10M and more)")
    b.add_argument("--no-parse-floor", action="store_true",
                   help="skip the parse floor and pandas, and the copy of the day's detail lines they read (for days "
                        "too large for the disk to hold that copy too)")
    b.add_argument("--no-fixed-cost", action="store_true",
                   help="skip the second run on a nearly empty day (what every run pays whatever its volume)")
    b.add_argument("--data-dir", default="data/bench", help="cache of generated worlds (default: data/bench)")
    b.set_defaults(func=_bench_e2e)

    s = sub.add_parser("demo", help="simulate a sample world, land it, dbt build, print a summary")
    s.add_argument("--data-dir", default="data")
    s.add_argument("--seed", type=int, default=42)
    s.add_argument("--days", type=int, default=3)
    s.add_argument("--daily-volume", type=int, default=2000)
    s.set_defaults(func=_demo)

    s = sub.add_parser("score", help="compare the reconciliation facts with the simulator's ground truth")
    s.add_argument("--world", default="data/world", help="the simulated world (default: data/world)")
    s.add_argument("--warehouse", default=_warehouse(), help=WAREHOUSE_HELP)
    s.set_defaults(func=_score)

    s = sub.add_parser("parity", help="INV-26: build a tiny world on DuckDB and on Spark, compare the public marts "
                                      "(needs the spark extra and Java 17)")
    s.add_argument("--work-dir", default="data/parity", help="scratch directory, emptied first (default: data/parity)")
    s.add_argument("--seed", type=int, default=7)
    s.add_argument("--days", type=int, default=3)
    s.add_argument("--merchants", type=int, default=3)
    s.add_argument("--daily-volume", type=int, default=200, help="payments per day")
    s.add_argument("--as-of", action="append", metavar="DATE",
                   help="build and compare as of this bill date (YYYY-MM-DD or 'latest', the default); repeatable")
    s.set_defaults(func=_parity)

    s = sub.add_parser("archive", help="move closed partitions older than the retention window to history Parquet")
    s.add_argument("--retention-days", type=int, default=90)
    s.add_argument("--as-of", default="", help="count the window back from this date (default: the last build's)")
    s.add_argument("--data-dir", default=_data_dir(), help=DATA_DIR_HELP + "; lake/history/ is written")
    s.add_argument("--warehouse", default=_warehouse(), help=WAREHOUSE_HELP)
    s.set_defaults(func=_archive)

    s = sub.add_parser("restore", help="bring one archived partition back into the hot table")
    s.add_argument("model", help="fct_recon_results or fct_journal_lines")
    s.add_argument("partition", help="the partition's date (bill_date or posted_on), YYYY-MM-DD")
    s.add_argument("--data-dir", default=_data_dir(), help=DATA_DIR_HELP)
    s.add_argument("--warehouse", default=_warehouse(), help=WAREHOUSE_HELP)
    s.set_defaults(func=_restore)

    s = sub.add_parser("publish", help="copy the marts of a green dbt build to the serving file BI reads")
    s.add_argument("--build", action="store_true", help="run dbt build first (publish only if it is green)")
    s.add_argument("--data-dir", default=_data_dir(), help=DATA_DIR_HELP)
    s.add_argument("--warehouse", default=_warehouse(), help=WAREHOUSE_HELP)
    s.add_argument("--serving", default="data/serving/tally.duckdb")
    s.add_argument("--target", default="target", help="dbt target path holding the build's run_results.json")
    s.set_defaults(func=_publish)

    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
