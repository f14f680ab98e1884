"""The reconciliation benchmark at a tiny size: it runs, prints its figures, and classifies exactly what it injected."""

from __future__ import annotations

from pathlib import Path

from tally import bench_recon


def test_bench_recon_prints_figures_and_classifies_its_injected_lines(tmp_path: Path, capsys):
    figures = bench_recon.run(20_000, tmp_path, files=2)
    out = capsys.readouterr().out
    assert "bare DuckDB full outer join" in out and "ratio" in out and "lines/s" in out
    # i % 1000 in (1, 2, 3, 4): amount mismatch, channel-only, internal-only, duplicated channel row: 20 each
    facts = figures["facts"]
    assert facts["amount_mismatch"] == 20
    assert facts["channel_only"] == 20
    assert facts["duplicate"] == 20
    # 20 internal-only payments, plus the 2 channel settlements that no bank statement in the bench pays
    assert facts["internal_only"] == 22
    assert facts["matched"] == 20_000 - 60
    assert figures["bare_join_rows"] == 20_000 + 20  # every order once, plus the second copy of each duplicated row
    assert figures["ratio_wall"] > 0 and figures["peak_rss_gb"] > 0
