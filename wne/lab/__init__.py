"""The lab: training, evaluation and benchmark tools around the :mod:`wne` library.

Nothing here is needed to use a denoiser; these modules read the one zoo
description, :mod:`wne.catalog`, and the library's image reader, :mod:`wne.imageio`.

- :mod:`wne.lab.train`: trains one checkpoint (``wne-train``).
- :mod:`wne.lab.data`: training patches, sampled statelessly per step.
- :mod:`wne.lab.zoo`: the ``wne-train`` command of every zoo key (``wne-zoo``).
- :mod:`wne.lab.protocol`: the paper's noise-mismatch protocol (any noise type) and its
  results cache.
- :mod:`wne.lab.report`: summaries, CSV/JSON/PNG files, paper comparison, metrics
  written back into checkpoints.
- :mod:`wne.lab.evaluate`: the evaluation command line (``wne-evaluate``; ``--noise`` for
  uniform, Laplace, Rayleigh, low-light and JPEG corruption).
- :mod:`wne.lab.sample`: the denoiser-as-prior sampler's protocols (``wne-sample``).
- :mod:`wne.lab.paper`: the WNE paper's published Set12 numbers.
- :mod:`wne.lab.plots`: the mismatch figure.
- :mod:`wne.lab.bench`: speed and memory benchmark (``wne-bench``).
- :mod:`wne.lab.bench_report`: the benchmark's statistics and output files.
- :mod:`wne.lab.bench_profile`: where the wrapper's own time goes.
- :mod:`wne.lab.loadtest`: load and latency test of the demo app (``wne-loadtest``).
"""
