"""diffclip:accuracy: confusion matrix, OA, AA, kappa and per-class accuracies of a classification."""
from __future__ import annotations

from qgis.core import (
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingOutputNumber,
    QgsProcessingParameterField,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterMapLayer,
    QgsProcessingParameterRasterLayer,
    QgsRasterLayer,
    QgsVectorLayer,
)

from .algorithm import DiffClipAlgorithm, FeedbackAdapter, tr

HELP = """<p>Compares a classification with reference labels: confusion matrix (with the classification's
class names), overall accuracy (OA), average accuracy (AA, mean producer's accuracy over the classes
with reference pixels), Cohen's kappa, and per class the producer's accuracy (recall), user's accuracy
(precision) and pixel counts. Only pixels with a class in both rasters count (0 / nodata = unlabelled).
All accuracies, kappa included, are given in percent (kappa x 100), as in the DiffCLIP paper.</p>
<h3>Parameters</h3>
<dl>
<dt>Classification (CLASSIFICATION)</dt><dd>A class raster, e.g. the output of 'DiffCLIP Few-shot
Classify'. Its grid is the grid of the assessment.</dd>
<dt>Reference (REFERENCE)</dt><dd>Reference labels: a raster of class ids (0 or nodata = unlabelled;
resampled with nearest neighbour onto the classification's grid when it lies on another grid or CRS),
or a vector layer of points (the pixel under each point) or polygons (every pixel whose centre lies
inside), in any CRS.</dd>
<dt>Reference class field (REFERENCE_FIELD)</dt><dd>For a vector reference: the field with the class id
(the classification's values) or the class name (matched to the classification's class names).</dd>
<dt>Report (OUTPUT_HTML)</dt><dd>HTML report with the tables.</dd>
<dt>Table (OUTPUT_CSV, optional)</dt><dd>CSV: one row per class (id, name, reference pixels, classified
pixels, correct pixels, producer's and user's accuracy in percent, then the confusion-matrix row:
reference pixels of the class classified as each class), then the overall figures (OA, AA, kappa
in percent, pixel count).</dd>
</dl>
<p>Outputs OA, AA and KAPPA (numbers, percent) can feed other algorithms in a model.</p>"""


class AccuracyAlgorithm(DiffClipAlgorithm):
    CLASSIFICATION = "CLASSIFICATION"
    REFERENCE = "REFERENCE"
    REFERENCE_FIELD = "REFERENCE_FIELD"
    OUTPUT_HTML = "OUTPUT_HTML"
    OUTPUT_CSV = "OUTPUT_CSV"
    OA, AA, KAPPA = "OA", "AA", "KAPPA"

    _name = "accuracy"
    _display = "DiffCLIP Accuracy Assessment"
    _group_id = "assessment"
    _group = "Assessment"

    def shortHelpString(self):  # noqa: N802
        return tr(HELP)

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterRasterLayer(self.CLASSIFICATION, tr("Classification")))
        self.addParameter(QgsProcessingParameterMapLayer(
            self.REFERENCE, tr("Reference (class raster, or points / polygons)"),
            types=[QgsProcessing.TypeRaster, QgsProcessing.TypeVectorPoint, QgsProcessing.TypeVectorPolygon]))
        self.addParameter(QgsProcessingParameterField(
            self.REFERENCE_FIELD, tr("Reference class field (vector reference only)"),
            parentLayerParameterName=self.REFERENCE, type=QgsProcessingParameterField.Any, optional=True))
        self.addParameter(QgsProcessingParameterFileDestination(
            self.OUTPUT_HTML, tr("Accuracy report"), tr("HTML files (*.html)")))
        self.addParameter(QgsProcessingParameterFileDestination(
            self.OUTPUT_CSV, tr("Accuracy table"), tr("CSV files (*.csv)"), optional=True, createByDefault=False))
        self.addOutput(QgsProcessingOutputNumber(self.OA, tr("Overall accuracy (%)")))
        self.addOutput(QgsProcessingOutputNumber(self.AA, tr("Average accuracy (%)")))
        self.addOutput(QgsProcessingOutputNumber(self.KAPPA, tr("Kappa (x 100)")))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        # numpy and GDAL only: no torch needed for the assessment.
        try:
            return self.compute(parameters, context, feedback)
        except QgsProcessingException:
            raise
        except (ValueError, RuntimeError, OSError, MemoryError) as e:
            raise QgsProcessingException(str(e) or e.__class__.__name__) from None

    def compute(self, parameters, context, feedback):
        from ..workflow.accuracy import assess_accuracy
        from ..workflow.requests import AccuracyRequest

        layer = self.parameterAsRasterLayer(parameters, self.CLASSIFICATION, context)
        if layer is None:
            raise QgsProcessingException(tr("Choose the classification raster (CLASSIFICATION)."))
        reference = self.parameterAsLayer(parameters, self.REFERENCE, context)
        request = AccuracyRequest(classification=layer.source(),
                                  output_html=self.parameterAsFileOutput(parameters, self.OUTPUT_HTML, context),
                                  output_csv=self.parameterAsFileOutput(parameters, self.OUTPUT_CSV, context))
        if isinstance(reference, QgsRasterLayer):
            request.reference = reference.source()
        elif isinstance(reference, QgsVectorLayer):
            if not self.parameterAsString(parameters, self.REFERENCE_FIELD, context):
                raise QgsProcessingException(tr(
                    "The reference is a vector layer: choose its class field (REFERENCE_FIELD)."))
            request.reference_samples = self.samples(parameters, context, feedback, self.REFERENCE,
                                                     self.REFERENCE_FIELD)
        else:
            raise QgsProcessingException(
                tr("Choose the reference layer (REFERENCE): a class raster or a vector layer."))
        adapter = FeedbackAdapter(feedback, {"reading": (0, 60), "writing": (60, 100)})
        result = assess_accuracy(request, adapter.callback())
        feedback.setProgress(100)
        return {self.OUTPUT_HTML: result.output_html or None, self.OUTPUT_CSV: result.output_csv or None,
                self.OA: result.overall, self.AA: result.average, self.KAPPA: result.kappa}
