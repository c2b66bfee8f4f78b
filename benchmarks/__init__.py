"""Speed benchmarks: ``python -m benchmarks.run_all [--quick]`` (what ``make bench`` runs).

One module per figure; each exposes ``run(sizes: Sizes, context: dict) -> dict`` returning a figure
(see ``benchmarks.report.figure``). Results are written to ``benchmarks/results/<host>-<date>.json``.
"""
