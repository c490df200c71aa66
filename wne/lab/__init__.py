"""The lab: training, evaluation and benchmark tools around the :mod:`wne` library.

Nothing here is needed to use a denoiser. Each command-line module has a ``main(argv)``
that ``wne <subcommand>`` runs (:mod:`wne.cli`): ``train`` (:mod:`wne.lab.train`, with its
patches from :mod:`wne.lab.data`), ``zoo`` (:mod:`wne.lab.zoo`: the catalog's training
commands), ``evaluate``, ``sample``, ``bench``, ``loadtest`` and ``denoise``.
"""
