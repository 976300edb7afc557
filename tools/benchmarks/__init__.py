"""The sections of ``tools/benchmark.py``, one module each, and their shared
helpers.

- :mod:`.sampling` (``sampling``): student vs CFG-teacher sampling speed-up.
- :mod:`.iteration` (``train``): distillation iteration vs the ideal and vs
  the plain peer.
- :mod:`.memory` (``memory``): peak RSS of training, fresh processes.
- :mod:`.fid_eval` (``eval``): FID evaluation on 1 vs 2 processes.
- :mod:`.mgd3` (``mgd3``): MGD3 synthesis time of digits IPC 10.
- :mod:`.common`: timing, the ideal-cost formulas, ratios, peak memory,
  markdown tables and the BENCHMARKS.md section.
- :mod:`.models`: the measured models and the plain peer.
- :mod:`.processes`: running a measurement in a fresh process.
"""
