"""What each job takes and gives back, as plain data: every front end fills the same requests."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from ..core.classes import DEFAULT_PROMPT_TEMPLATE, ClassInfo

#: (xmin, ymin, xmax, ymax) in the CRS of the first input raster.
Extent = Tuple[float, float, float, float]


@dataclass
class Samples:
    """Labelled features: WKB geometries in ``crs_wkt`` (reprojected to the grid) and their class values.

    ``files`` are the files they were read from, so that no output may overwrite them.
    """

    wkbs: List[Optional[bytes]]
    values: List[object]
    crs_wkt: str = ""
    files: List[str] = field(default_factory=list)


@dataclass
class ClassifyRequest:
    """Few-shot classification: fine-tune on labelled samples, classify the inputs, write the outputs.

    Classes come from ``classes`` (the dock's table) or from the sample values, named and
    prompted by the ``prompts`` class-list file and ``prompt_template``. ``None`` counts
    take the preset's value; ``pretrain_epochs`` 0 fine-tunes a randomly initialised encoder.
    """

    inputs: List[str]
    samples: Samples
    output: str
    output_confidence: str = ""
    output_model: str = ""
    classes: Optional[List[ClassInfo]] = None
    prompts: str = ""
    prompt_template: str = DEFAULT_PROMPT_TEMPLATE
    pretrained: str = ""
    preset: str = "cpu"
    window: str = "auto"
    pretrain_epochs: Optional[int] = None
    epochs: Optional[int] = None
    class_proportions: float = 0.5
    device: str = "auto"
    seed: int = 0
    extent: Optional[Extent] = None
    smoothing: int = 0


@dataclass
class ApplyRequest:
    """Classify rasters with a saved classifier."""

    inputs: List[str]
    model: str
    output: str
    output_confidence: str = ""
    device: str = "auto"
    extent: Optional[Extent] = None
    smoothing: int = 0


@dataclass
class PretrainRequest:
    """Masked-diffusion pretraining of the encoder on the inputs' unlabelled pixels."""

    inputs: List[str]
    output_model: str
    preset: str = "cpu"
    window: str = "auto"
    epochs: Optional[int] = None
    sample_count: Optional[int] = None
    mask_ratio: float = 0.7
    device: str = "auto"
    seed: int = 0


@dataclass
class AccuracyRequest:
    """Compare a classification with a reference class raster or reference features."""

    classification: str
    output_html: str = ""
    output_csv: str = ""
    reference: str = ""                       # a class raster
    reference_samples: Optional[Samples] = None  # or features with class ids or names
    # The map class each reference feature was drawn from (a Validation Sample's map_class): with it, points
    # give area-weighted estimates.
    drawn_classes: Optional[List[object]] = None


@dataclass
class ValidationSampleRequest:
    """A stratified random sample of a classification's pixels, to label for an accuracy assessment."""

    classification: str
    output: str
    sample_size: int = 500
    minimum_per_class: int = 50
    seed: int = 0


@dataclass
class SuggestRequest:
    """Pixels where a new label would help the model most, as points to label next."""

    inputs: List[str]
    model: str
    output: str
    count: Optional[int] = None           # None: 2 per class
    samples: Optional[Samples] = None     # labelled samples: suggestions keep away from them
    extent: Optional[Extent] = None
    seed: int = 0
    device: str = "auto"


@dataclass
class ClassifyResult:
    """What a classification run wrote and found."""

    output: str
    output_confidence: str
    output_model: str
    classes: List[ClassInfo]
    window: int
    window_scores: Dict[int, float]
    samples: int
    seconds: float
    device: str
    few_samples: bool = False   # a median of few_label_max_shots samples per class or fewer: no accuracy estimate


@dataclass
class AccuracyResult:
    overall: float   # percent
    average: float   # percent
    kappa: float     # x 100
    pixels: int
    output_html: str = ""
    output_csv: str = ""

