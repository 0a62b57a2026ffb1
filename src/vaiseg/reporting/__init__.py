"""Reporting (§5): the paper's tables, the paper diff, the uncertainty analysis
(Figs. 6-7), calibration (beyond the paper), the map figures (Figs. 3-6) and
training-history plots.

Modules:
- :mod:`.tables`: Table 1 / Table 2 (+ extended P/R/F1/IoU tables) from confusion matrices
- :mod:`.paper_diff`: every table cell against ``paper_results.csv`` + qualitative findings
- :mod:`.uncertainty`: accuracy vs. uncertainty threshold curve and coverage (§5, Fig. 7)
- :mod:`.calibration`: expected calibration error and reliability diagrams
- :mod:`.figures`: map figures (Figs. 3-6) and training-history plots
"""
