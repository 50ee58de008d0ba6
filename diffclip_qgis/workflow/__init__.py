"""The jobs every front end runs (Processing, the dock's task, the command line), written once.

Each takes a plain request dataclass (``requests``) and a
:class:`~diffclip_qgis.core.progress.Callback` (progress, cancel, log, warnings) and uses only
the QGIS-free ``core`` and ``gis`` layers: ``classify`` (few-shot classification, applying a
saved model), ``pretrain`` and ``accuracy``. Import them from their modules: ``accuracy`` and
``requests`` need no torch.
"""
