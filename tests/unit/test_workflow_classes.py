"""The classes of a run: a text class field takes the ids its class list gives those names."""
import json
from types import SimpleNamespace

import numpy as np
import pytest

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


def test_classes_the_list_gives_no_id_keep_theirs_unless_the_list_uses_it(tmp_path):
    samples = by_name("water", "forest", "meadow", "shadow")     # alphabetically 4, 1, 2, 3
    req = request(tmp_path, [{"id": 3, "name": "forest"}, {"name": "meadow", "prompt": "low grass"},
                             {"id": 1, "name": "road"}])         # road: no samples, but 1 is its id
    classes, numbered = resolve_classes(req, samples, Callback())
    assert [(c.id, c.name) for c in classes] == [(2, "meadow"), (3, "forest"), (4, "water"), (5, "shadow")]
    assert classes[0].prompt == "low grass"
    assert numbered.class_ids.tolist() == [4, 4, 3, 3, 2, 2, 5, 5]


def test_two_spellings_of_one_listed_class_are_refused(tmp_path):
    samples = by_name("Grass", "grass", "road")
    with pytest.raises(ValueError, match="'Grass' and 'grass' both match the class 'grass' \\(id 2\\) of classes.json"):
        resolve_classes(request(tmp_path, [{"id": 2, "name": "grass"}, {"id": 1, "name": "road"}]), samples,
                        Callback())


def test_ids_of_an_integer_class_field_and_a_list_without_ids_stay(tmp_path):
    samples = by_name("b", "a")
    req = request(tmp_path, [{"name": "a", "prompt": "first"}, {"name": "b", "prompt": "second"}])
    classes, numbered = resolve_classes(req, samples, Callback())
    assert [c.id for c in classes] == [1, 2] and numbered is samples
    integer = SampleSet(rows=np.arange(4), cols=np.zeros(4, np.int64), class_ids=np.array([7, 7, 9, 9]),
                        classes=[ClassInfo(7, "class 7"), ClassInfo(9, "class 9")])
    classes, numbered = resolve_classes(request(tmp_path, [{"id": 9, "name": "water"}]), integer, Callback())
    assert [(c.id, c.name) for c in classes] == [(7, "class 7"), (9, "water")] and numbered is integer
