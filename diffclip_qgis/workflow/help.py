"""The algorithms' help texts, shared by the Processing toolbox and the command line (``--help``).

HTML as Processing shows it; :func:`plain_text` turns it into terminal text.
``%CPU_...%`` / ``%PAPER_...%`` markers are filled with the presets' current values.
"""
from __future__ import annotations

import html
import re
import textwrap

FEWSHOT_HELP = """<p>Few-shot, language-driven classification of one or more co-registered rasters (for example a
hyperspectral image and LiDAR rasters) with DiffCLIP: an encoder (pretrained on unlabelled pixels by
masked diffusion with the paper preset, with PRETRAIN_EPOCHS above 0, or given as a pretrained model) is fine-tuned on a handful of labelled pixels
per class against one text prompt per class, and every pixel (or every pixel in the extent) is classified.
The output is a GeoTIFF of class ids (0 = unclassified / nodata) with a colour table, class names and a
.qml style (paletted renderer) next to it.</p>
<h3>Parameters</h3>
<dl>
<dt>Input rasters (INPUTS)</dt><dd>One raster per modality, e.g. the hyperspectral image then a LiDAR
DSM/intensity raster. The first raster defines the output grid (extent, pixel size, CRS); the others are
resampled onto it (bilinear) with a warning when they differ. Band order and count must be the same when
you apply the model later. Multi-file mosaics: build a virtual raster (VRT) first.</dd>
<dt>Training samples (SAMPLES)</dt><dd>Points (the pixel under each point) or polygons (every pixel whose
centre lies inside) in any CRS; they are reprojected to the grid's CRS. 'Selected features only' is
honoured. Samples outside the rasters are skipped with a warning; samples on nodata pixels are skipped.
About 5 to 20 pixels per class are typical.</dd>
<dt>Class field (CLASS_FIELD)</dt><dd>Field of the samples holding the class: integer ids of 1 or more
(kept as output values; 0 and negative values are refused because 0 means nodata) or class names
(numbered by the ids PROMPTS gives those names, else 1..K in alphabetical order). Every sample needs a
value. At least two classes are needed.</dd>
<dt>Class names and prompts (PROMPTS, optional)</dt><dd>A class list: the JSON the DiffCLIP dock saves
({"classes": [{"id": 1, "name": ..., "colour": ..., "prompt": ...}]}) or a CSV of 'class name or id,
prompt' rows. Entries are matched to the sample classes by id, else by name; they give names, colours and
prompts. Classes it does not list get a prompt from the template.</dd>
<dt>Prompt template (PROMPT_TEMPLATE)</dt><dd>Prompt of classes without one; {name} is replaced by the
class name. Every class needs a distinct prompt (the text encoder learns them as labels).</dd>
<dt>Pretrained model (PRETRAINED, optional)</dt><dd>A .pt file written by 'DiffCLIP Pretrain Encoder'
(or a classifier .pt, whose encoder is reused) for the same kind of inputs. Empty: the encoder starts
from random weights, pretrained on the inputs first when Pretraining epochs is above 0.</dd>
<dt>Preset (PRESET)</dt><dd>cpu: a small network and short schedules, minutes on a laptop CPU; about 4000
unlabelled pixels of the inputs join fine-tuning (pseudo-labels where the classifier is confident and, for
the pixel alone, agrees with the neighbouring pixels). paper: the
paper's sizes and schedules, meant for a CUDA GPU.</dd>
<dt>Window size (WINDOW)</dt><dd>Size in pixels of the square neighbourhood the classifier sees around
each pixel (1 = the pixel alone). auto (cpu preset): the pixel alone where neighbouring pixels differ
by real changes of material (with more than 4 samples per class, unless cross-validation among 1, 3, 5 and 7
finds a window clearly better); where they differ mostly by sensor noise (which a window averages away),
or the bands are too few (10 or fewer) to tell, cross-validation on the samples picks among the sizes
the encoder supports, except with 4 or fewer samples per class (median), where it cannot tell sizes
apart: then 5 x 5 for noise, 3 x 3 when it cannot be told. auto (paper preset): always by
cross-validation. The log gives the reason, the chosen size and the cross-validation scores.</dd>
<dt>Pretraining epochs (PRETRAIN_EPOCHS)</dt><dd>-1 or empty: the preset's (cpu %CPU_FEWSHOT_PRETRAIN_EPOCHS%:
no pretraining, which scored as well or better on every scene measured at CPU budgets and saves
time; paper %PAPER_FEWSHOT_PRETRAIN_EPOCHS%); 0: no pretraining (random encoder); try %CPU_PRETRAIN_EPOCHS%
or more to pretrain on the inputs with the cpu preset. Ignored when a pretrained model is given.</dd>
<dt>Fine-tuning epochs (EPOCHS)</dt><dd>-1 or empty: the preset's (cpu: %CPU_MAX_STEPS% optimiser steps,
so fewer epochs than %CPU_EPOCHS% with many samples and more with few; paper %PAPER_EPOCHS%). Any other number
is used in full.</dd>
<dt>Follow the scene's class proportions (CLASS_PROPORTIONS)</dt><dd>Training is class-balanced, so
the classifier takes every class as equally common. After training, the share of each class in the scene
is estimated from the classifier's answers on about 4000 unlabelled pixels (expectation-maximisation) and
ambiguous pixels lean towards the common classes: 0 = not at all (best average accuracy over classes,
rare classes found most), 1 = fully (best overall accuracy), 0.5 (default) = halfway. The estimated
shares are written to the log and saved with the model, which applies them to other rasters too.</dd>
<dt>Device (DEVICE)</dt><dd>auto (a CUDA GPU when PyTorch sees one, else the CPU), cpu or cuda.</dd>
<dt>Random seed (SEED)</dt><dd>Same inputs and seed give the same model and map (on the same device).</dd>
<dt>Classify only inside this extent (EXTENT, optional)</dt><dd>Classify just this part of the grid
(any CRS; it is reprojected). Training samples still come from the whole input.</dd>
<dt>Majority smoothing radius (SMOOTHING)</dt><dd>Radius in pixels of a majority filter over the
classification (removes isolated pixels); 0 = off. Nodata stays nodata and is never smoothed across.</dd>
<dt>Classification (OUTPUT)</dt><dd>GeoTIFF of class ids, with its .qml style.</dd>
<dt>Confidence (OUTPUT_CONFIDENCE, optional)</dt><dd>GeoTIFF (float, 0..1, nodata -1) of the
probability of the chosen class (before smoothing).</dd>
<dt>Trained model (OUTPUT_MODEL, optional)</dt><dd>Save the classifier (.pt) to apply it to other rasters
with 'DiffCLIP Apply Model'.</dd>
</dl>
<p>The log shows the device, the samples per class, the window chosen with its cross-validation scores,
the losses and the time per phase. Requires PyTorch in QGIS's Python.</p>"""

PRETRAIN_HELP = """<p>Pretrains the DiffCLIP encoder on unlabelled pixels of the input rasters with masked diffusion
(no labels needed) and saves it as a .pt model. Give it to 'DiffCLIP Few-shot Classify' (PRETRAINED) to
train classifiers for several sets of samples or class schemes without pretraining again.</p>
<h3>Parameters</h3>
<dl>
<dt>Input rasters (INPUTS)</dt><dd>One raster per modality (e.g. hyperspectral, then LiDAR). The first
defines the grid; the others are resampled onto it. Classify later with rasters of the same sensors in
the same order.</dd>
<dt>Preset (PRESET)</dt><dd>cpu: a small network, minutes on a CPU. paper: the paper's sizes (for a
CUDA GPU).</dd>
<dt>Pretraining window (WINDOW)</dt><dd>The largest window (pixels) the encoder is trained for; the
classifier can use this size or smaller. auto: the preset's (cpu %CPU_MODEL_WINDOW%, paper %PAPER_MODEL_WINDOW%).</dd>
<dt>Epochs (EPOCHS)</dt><dd>-1 or empty: the preset's (cpu %CPU_PRETRAIN_EPOCHS%,
paper %PAPER_PRETRAIN_EPOCHS%). 0 saves a randomly initialised encoder.</dd>
<dt>Mask ratio (MASK_RATIO)</dt><dd>Share of each window's pixels hidden from the encoder (default
0.7, as in the paper).</dd>
<dt>Training windows (SAMPLE_COUNT)</dt><dd>How many random valid pixels (windows) to pretrain on;
-1 or empty: the preset's (cpu %CPU_SAMPLE_COUNT%, paper %PAPER_SAMPLE_COUNT%).</dd>
<dt>Device (DEVICE)</dt><dd>auto (a CUDA GPU when PyTorch sees one, else the CPU), cpu or cuda.</dd>
<dt>Random seed (SEED)</dt><dd>Same inputs and seed give the same encoder (on the same device).</dd>
<dt>Pretrained model (OUTPUT_MODEL)</dt><dd>The .pt file to write.</dd>
</dl>"""

APPLY_HELP = """<p>Classifies rasters with a model saved by 'DiffCLIP Few-shot Classify' (OUTPUT_MODEL), e.g. another
scene of the same sensors, or the same scene again with smoothing or inside another extent. The output
is a GeoTIFF of class ids (0 = nodata) with the model's class names and colours and a .qml style.</p>
<h3>Parameters</h3>
<dl>
<dt>Input rasters (INPUTS)</dt><dd>One raster per modality, the same sensors in the same order and with
the same band counts as the rasters the model was trained on (otherwise the algorithm stops and says
what it expected). The first raster defines the output grid.</dd>
<dt>Model (MODEL)</dt><dd>A classifier .pt file written by 'DiffCLIP Few-shot Classify'. (An encoder from
'DiffCLIP Pretrain Encoder' has no classes yet: fine-tune it with Few-shot Classify.)</dd>
<dt>Device (DEVICE)</dt><dd>auto (a CUDA GPU when PyTorch sees one, else the CPU), cpu or cuda.</dd>
<dt>Classify only inside this extent (EXTENT, optional)</dt><dd>Classify just this part of the grid.</dd>
<dt>Majority smoothing radius (SMOOTHING)</dt><dd>Radius in pixels of a majority filter (0 = off);
nodata stays nodata.</dd>
<dt>Classification (OUTPUT)</dt><dd>GeoTIFF of class ids, with its .qml style.</dd>
<dt>Confidence (OUTPUT_CONFIDENCE, optional)</dt><dd>GeoTIFF (0..1, nodata -1) of the probability of the
chosen class.</dd>
</dl>"""

ACCURACY_HELP = """<p>Compares a classification with reference labels: confusion matrix (with the classification's
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
<dt>Reference class field (REFERENCE_FIELD)</dt><dd>For a vector reference: the name of the field with the
class id (the classification's values) or the class name (matched to the classification's class names). Empty:
the layer's field reference, where it has one (a Validation Sample's). Features left empty or 0 there are
unlabelled and left out (with a warning). Typed, not picked from a list: QGIS closes when a field list follows a layer
choice that may be a raster.</dd>
<dt>Report (OUTPUT_HTML)</dt><dd>HTML report with the tables.</dd>
<dt>Table (OUTPUT_CSV, optional)</dt><dd>CSV: one row per class (id, name, reference pixels, classified
pixels, correct pixels, producer's and user's accuracy in percent, then the confusion-matrix row:
reference pixels of the class classified as each class), then the overall figures (OA, AA, kappa
in percent, pixel count).</dd>
</dl>
<p>With a validation sample of points (from 'DiffCLIP Validation Sample', its reference field filled in)
the report also gives the area-weighted estimates of good practice (Olofsson et al. 2014): the map
classes are the strata, weighted by their pixel counts in the classification; the error matrix in
estimated area proportions, overall, user's and producer's accuracy with 95 % confidence intervals,
and the error-adjusted area of every class (hectares in a projected CRS, else pixels) with its 95 %
confidence interval next to the mapped area. Pixel counts of a map are biased by its errors: report
these areas. They are given only when they hold: the points lie on the map classes they were drawn from
(field map_class; a sample of another map, or points of another kind, give the confusion matrix alone) and
every map class has 2 or more points filled in (points left empty or 0 are left out); the log says which
condition failed.</p>
<p>Outputs OA, AA and KAPPA (numbers, percent) can feed other algorithms in a model.</p>"""

VALIDATION_HELP = """<p>Draws a stratified random sample of a classification's pixels for an accuracy
assessment and area estimate as good practice asks (Olofsson et al. 2014; Stehman 2013): the strata are
the map classes. Fill in the 'reference' field of each point with the class you see there (attribute
table, or imagery of higher resolution), then run 'DiffCLIP Accuracy Assessment' with the points as
REFERENCE and 'reference' as REFERENCE_FIELD.</p>
<h3>Parameters</h3>
<dl>
<dt>Classification (CLASSIFICATION)</dt><dd>The class raster to assess (0 / nodata is not sampled).</dd>
<dt>Sample size (SAMPLE_SIZE)</dt><dd>Points in all (default 500).</dd>
<dt>Minimum per class (MIN_PER_CLASS)</dt><dd>Every class gets at least this many points (default 50; a
class with fewer pixels gets all of them); the rest of the sample is allocated in proportion to the
classes' mapped areas. Rare classes thus get enough points for their user's accuracy, and the total
stays efficient for overall accuracy and area.</dd>
<dt>Random seed (SEED)</dt><dd>The same seed draws the same points.</dd>
<dt>Validation points (OUTPUT)</dt><dd>A GeoPackage of points at the sampled pixels' centres, in the
classification's CRS, with fields id, map_class, map_name and an empty integer field 'reference', added to
the map. Save it to a file you keep: you fill it in, and QGIS deletes its temporary folder when it closes (a
temporary output is refused).</dd>
</dl>"""


def fill_preset_values(text: str) -> str:
    """Replace %CPU_...% / %PAPER_...% markers in help texts by the presets' current values."""
    try:
        from ..core.config import fewshot_pretrain_epochs, get_preset  # plain dataclasses: no torch

        values = {}
        for name in ("cpu", "paper"):
            p = get_preset(name)
            values.update({
                f"%{name.upper()}_PRETRAIN_EPOCHS%": p.pretrain.epochs,
                f"%{name.upper()}_FEWSHOT_PRETRAIN_EPOCHS%": fewshot_pretrain_epochs(p),
                f"%{name.upper()}_EPOCHS%": p.finetune.epochs,
                f"%{name.upper()}_MAX_STEPS%": p.finetune.max_steps,
                f"%{name.upper()}_SAMPLE_COUNT%": p.pretrain.sample_count,
                f"%{name.upper()}_MODEL_WINDOW%": p.model.window,
            })
    except Exception:  # noqa: BLE001 (help must always render)
        values = {}
    for key, value in values.items():
        text = text.replace(key, str(value))
    return re.sub(r"%(CPU|PAPER)_[A-Z_]+%", "?", text)


def html_help(help_html: str) -> str:
    """The help as Processing shows it: preset values filled, source line breaks joined (the panel keeps them)."""
    return " ".join(fill_preset_values(help_html).split())


def plain_text(help_html: str, width: int = 88) -> str:
    """A help text for the terminal: paragraphs and 'NAME: text' entries, wrapped to ``width``."""
    text = fill_preset_values(help_html)
    text = re.sub(r"<dt>(.*?)</dt>\s*<dd>", lambda m: "\n\n" + m.group(1) + "\n    ", text, flags=re.S)
    text = re.sub(r"<h3>(.*?)</h3>", lambda m: "\n\n" + m.group(1).upper() + ":", text, flags=re.S)
    text = re.sub(r"</p>|<p>", "\n\n", text)
    text = html.unescape(re.sub(r"<[^>]+>", "", text))
    blocks = []
    for block in re.split(r"\n\s*\n", text):
        lines = block.strip("\n").split("\n", 1)
        if len(lines) == 2 and lines[1].startswith("    "):   # a parameter: name, then its text indented
            body = " ".join(lines[1].split())
            blocks.append(lines[0].strip() + "\n" + textwrap.fill(body, width, initial_indent="    ",
                                                                   subsequent_indent="    "))
        elif block.strip():
            blocks.append(textwrap.fill(" ".join(block.split()), width))
    return "\n\n".join(blocks)

SUGGEST_HELP = """<p>Suggests where to label next (active learning): the pixels where the classifier is least
sure, measured by the margin between its two best classes, spread over the map (never next to each other
or to a labelled sample, never on nodata) and over the classes (at most a fair share per predicted
class). Label the suggested points (the two best guesses are in the attribute table), add them to your
samples and run Few-shot Classify again. Measured against labels placed at random (README): clearly better on
one scene of four, as good on average on two, worse on one; it helps most where the map is wrong over whole
regions.</p>
<h3>Parameters</h3>
<dl>
<dt>Input rasters (INPUTS)</dt><dd>The rasters the model classifies, in its order.</dd>
<dt>Model (MODEL)</dt><dd>A classifier .pt from 'DiffCLIP Few-shot Classify'.</dd>
<dt>Number of suggestions (COUNT)</dt><dd>-1 or empty: 2 per class.</dd>
<dt>Labelled samples (SAMPLES, optional)</dt><dd>Your current samples: suggestions keep away from them.</dd>
<dt>Suggest only inside this extent (EXTENT, optional)</dt><dd>Limit the suggestions to this area.</dd>
<dt>Random seed (SEED)</dt><dd>The candidates are up to 20,000 random valid pixels; the same seed gives the
same suggestions.</dd>
<dt>Device (DEVICE)</dt><dd>auto, cpu or cuda.</dd>
<dt>Suggested samples (OUTPUT)</dt><dd>A GeoPackage of points with fields rank (1 = most useful), best_class,
second_class (class ids), margin (0..1, small = unsure), best_name and second_name, added to the map. A file
with a field you added and filled in (a class you labelled) is never replaced: choose another name.</dd>
</dl>"""
