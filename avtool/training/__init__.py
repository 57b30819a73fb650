"""Trainers, calibrators and cache builders: everything that makes or measures weights.

Above the model families in the import order (cli -> tasks -> training -> models): a trainer
builds a family's module, feeds it data from :mod:`avtool.datasets` and writes checkpoints the
family's ``load()`` reads. Nothing in :mod:`avtool.models` imports from here.
"""
