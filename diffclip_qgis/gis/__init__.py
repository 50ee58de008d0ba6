"""GDAL/OGR input and output: raster stacks, sample vectors and classification files.

Only GDAL/OGR/OSR and numpy are used here (no QGIS, Qt or torch), so everything in this
package also works headless, from the command line.
"""
