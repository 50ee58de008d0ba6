"""Compute core of DiffCLIP for QGIS: model, training, inference and metrics.

Imports only numpy and torch (never qgis, PyQt or GDAL), so it runs headless and on a
GPU server; ``tests/unit/test_architecture.py`` enforces that.
"""
