"""diffclip:accuracy: confusion matrix, OA, AA, kappa and per-class accuracies of a classification."""
from __future__ import annotations

from qgis.core import (
    QgsProcessingException,
    QgsProcessingOutputNumber,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterMapLayer,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
    QgsRasterLayer,
    QgsVectorLayer,
)

from ..workflow.help import ACCURACY_HELP, html_help
from .algorithm import (RASTER, VECTOR_POINT, VECTOR_POLYGON, DiffClipAlgorithm, FeedbackAdapter,
                        feature_wkb_and_values, tr)

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
    needs_torch = False

    def shortHelpString(self):  # noqa: N802
        return html_help(tr(ACCURACY_HELP))

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterRasterLayer(self.CLASSIFICATION, tr("Classification")))
        self.addParameter(QgsProcessingParameterMapLayer(
            self.REFERENCE, tr("Reference (class raster, or points / polygons)"),
            types=[RASTER, VECTOR_POINT, VECTOR_POLYGON]))
        # A field name typed, not a field list: QGIS (3.22 to 3.44 at least) crashes building a field list whose
        # parent layer is a raster, and REFERENCE may be one.
        self.addParameter(QgsProcessingParameterString(
            self.REFERENCE_FIELD, tr("Reference class field (vector only)"),
            optional=True))
        self.addParameter(QgsProcessingParameterFileDestination(
            self.OUTPUT_HTML, tr("Accuracy report"), tr("HTML files (*.html)")))
        self.addParameter(QgsProcessingParameterFileDestination(
            self.OUTPUT_CSV, tr("Accuracy table"), tr("CSV files (*.csv)"), optional=True, createByDefault=False))
        self.addOutput(QgsProcessingOutputNumber(self.OA, tr("Overall accuracy (%)")))
        self.addOutput(QgsProcessingOutputNumber(self.AA, tr("Average accuracy (%)")))
        self.addOutput(QgsProcessingOutputNumber(self.KAPPA, tr("Kappa (x 100)")))

    def compute(self, parameters, context, feedback):
        from ..gis.validation import MAP_CLASS_FIELD
        from ..workflow.accuracy import REFERENCE_NEEDS_FIELD, assess_accuracy, default_reference_field
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
            fields = reference.fields().names()
            field = self.parameterAsString(parameters, self.REFERENCE_FIELD, context) \
                or default_reference_field(fields)
            if not field:
                raise QgsProcessingException(tr(REFERENCE_NEEDS_FIELD) + " " + tr("Its fields: {0}.").format(
                    ", ".join(fields) or "-"))
            feedback.pushInfo(tr("Reference class field: {0}").format(field))
            request.reference_samples = self.samples(dict(parameters, **{self.REFERENCE_FIELD: field}), context,
                                                     feedback, self.REFERENCE, self.REFERENCE_FIELD)
            if MAP_CLASS_FIELD in fields:   # a Validation Sample: the classes its points were drawn from
                source = self.parameterAsSource(parameters, self.REFERENCE, context)
                request.drawn_classes = feature_wkb_and_values(source, MAP_CLASS_FIELD, context, feedback)[1]
        else:
            raise QgsProcessingException(
                tr("Choose the reference layer (REFERENCE): a class raster or a vector layer."))
        adapter = FeedbackAdapter(feedback, {"reading": (0, 60), "writing": (60, 100)})
        result = assess_accuracy(request, adapter.callback())
        feedback.setProgress(100)
        return {self.OUTPUT_HTML: result.output_html or None, self.OUTPUT_CSV: result.output_csv or None,
                self.OA: result.overall, self.AA: result.average, self.KAPPA: result.kappa}
