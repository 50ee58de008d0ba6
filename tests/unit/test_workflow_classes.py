"""The classes of a run: a text class field takes the ids its class list gives those names."""
import json
from types import SimpleNamespace

import numpy as np

from diffclip_qgis.core.classes import DEFAULT_PROMPT_TEMPLATE, ClassInfo
from diffclip_qgis.core.progress import Callback
from diffclip_qgis.gis.samples import SampleSet
from diffclip_qgis.workflow.classify import resolve_classes


def by_name(*names):
    """Samples of a text class field: classes numbered by the names' alphabetical order, two pixels each."""
    ranked = {name: i for i, name in enumerate(sorted(set(names)), 1)}
    ids = np.repeat([ranked[n] for n in names], 2)
    return SampleSet(rows=np.arange(len(ids)), cols=np.zeros(len(ids), np.int64), class_ids=ids,
                     classes=[ClassInfo(i, n) for n, i in sorted(ranked.items(), key=lambda item: item[1])])


def request(tmp_path, entries):
    path = tmp_path / "classes.json"
    path.write_text(json.dumps({"classes": entries}))
    return SimpleNamespace(classes=None, prompts=str(path), prompt_template=DEFAULT_PROMPT_TEMPLATE)


def test_a_text_class_field_takes_the_ids_of_its_class_list(tmp_path):
    """As the demo: 'live oak tree' is 1 and 'asphalt road' 4 in its list and in its reference raster."""
    samples = by_name("live oak tree", "asphalt road", "grass")   # alphabetically 3, 1, 2
    req = request(tmp_path, [{"id": 1, "name": "live oak tree"}, {"id": 2, "name": "grass"},
                             {"id": 4, "name": "Asphalt road"}])
    classes, numbered = resolve_classes(req, samples, Callback())
    assert [(c.id, c.name) for c in classes] == [(1, "live oak tree"), (2, "grass"), (4, "asphalt road")]
    assert numbered.class_ids.tolist() == [1, 1, 4, 4, 2, 2]
    assert numbered.rows.tolist() == samples.rows.tolist()


def test_classes_the_list_leaves_out_or_gives_no_id_follow_above_its_ids(tmp_path):
    samples = by_name("water", "forest", "meadow")                # alphabetically 3, 1, 2
    req = request(tmp_path, [{"id": 3, "name": "forest"}, {"name": "meadow", "prompt": "low grass"}])
    classes, numbered = resolve_classes(req, samples, Callback())
    assert [(c.id, c.name) for c in classes] == [(3, "forest"), (4, "meadow"), (5, "water")]
    assert classes[1].prompt == "low grass"
    assert numbered.class_ids.tolist() == [5, 5, 3, 3, 4, 4]


def test_ids_of_an_integer_class_field_and_a_list_without_ids_stay(tmp_path):
    samples = by_name("b", "a")
    req = request(tmp_path, [{"name": "a", "prompt": "first"}, {"name": "b", "prompt": "second"}])
    classes, numbered = resolve_classes(req, samples, Callback())
    assert [c.id for c in classes] == [1, 2] and numbered is samples
    integer = SampleSet(rows=np.arange(4), cols=np.zeros(4, np.int64), class_ids=np.array([7, 7, 9, 9]),
                        classes=[ClassInfo(7, "class 7"), ClassInfo(9, "class 9")])
    classes, numbered = resolve_classes(request(tmp_path, [{"id": 9, "name": "water"}]), integer, Callback())
    assert [(c.id, c.name) for c in classes] == [(7, "class 7"), (9, "water")] and numbered is integer
