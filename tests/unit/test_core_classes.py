"""Class-list files in any encoding or shape, and prompts the text encoder cannot tell apart."""
import locale
import zlib

import pytest

from diffclip_qgis.core.classes import ClassInfo, ClassListError, load_class_list
from diffclip_qgis.core.tokenizer import check_prompts

CSV = "name,prompt\nforest,dense forest\nForêt,forêt dense\n"


@pytest.fixture
def system_encoding(monkeypatch):
    """Set the encoding ``locale.getpreferredencoding(False)`` reports (QGIS on Windows: cp1252)."""
    def use(encoding):
        monkeypatch.setattr(locale, "getpreferredencoding", lambda do_setlocale=True: encoding)
    return use


# --------------------------------------------------------------------------- encodings

@pytest.mark.parametrize("bom", [b"", b"\xef\xbb\xbf"], ids=["utf8", "utf8-bom"])
def test_utf8_with_or_without_bom(tmp_path, bom):
    csv_path, json_path = tmp_path / "p.csv", tmp_path / "p.json"
    csv_path.write_bytes(bom + CSV.encode("utf-8"))
    json_path.write_bytes(bom + '[{"id": 1, "name": "Forêt"}]'.encode("utf-8"))
    assert load_class_list(str(csv_path))[1] == ClassInfo(0, "Forêt", "", "forêt dense")
    assert load_class_list(str(json_path)) == [ClassInfo(1, "Forêt", "", "")]


def test_latin1_csv_is_read_in_the_system_encoding(tmp_path, system_encoding):
    system_encoding("cp1252")
    path = tmp_path / "p.csv"
    path.write_bytes(CSV.encode("latin-1"))
    assert load_class_list(str(path))[1] == ClassInfo(0, "Forêt", "", "forêt dense")


@pytest.mark.parametrize("name, encoding", [("p.csv", "UTF-8"), ("p.json", "cp1252")])
def test_text_that_is_not_utf8_names_file_and_line(tmp_path, system_encoding, name, encoding):
    system_encoding(encoding)                                 # JSON is UTF-8 whatever the system's encoding
    path = tmp_path / name
    text = CSV if name.endswith(".csv") else '{"classes": [\n  {"id": 1,\n   "name": "Forêt"}]}'
    path.write_bytes(text.encode("latin-1"))
    with pytest.raises(ClassListError) as err:
        load_class_list(str(path))
    message = str(err.value)
    assert str(path) in message and "line 3" in message and "0xea" in message and "Save it as UTF-8" in message


@pytest.mark.parametrize("content", [CSV.encode("utf-16"), b"name,prompt\n\x00\x01\x02binary"], ids=["utf16", "binary"])
def test_binary_file_names_file_and_line(tmp_path, system_encoding, content):
    system_encoding("cp1252")                                 # would decode any byte: NUL must be caught first
    path = tmp_path / "p.csv"
    path.write_bytes(content)
    with pytest.raises(ClassListError, match=r"p\.csv is not a text file: line [12] has a NUL byte.*UTF-8"):
        load_class_list(str(path))


# --------------------------------------------------------------------------- shapes of JSON

@pytest.mark.parametrize("text", ["[" * 100000, '{"classes": ' + "[" * 100000 + "]" * 100000 + "}"],
                         ids=["unclosed", "closed"])
def test_deeply_nested_json_is_not_a_class_list(tmp_path, text):
    path = tmp_path / "deep.json"
    path.write_text(text)
    with pytest.raises(ClassListError, match=r"deep\.json is not a class list: its JSON is nested too deeply"):
        load_class_list(str(path))


@pytest.mark.parametrize("text, kind", [("[[[]]]", "list"), ('{"classes": [1, 2]}', "int"), ('["water"]', "str")])
def test_entries_that_are_not_objects(tmp_path, text, kind):
    path = tmp_path / "c.json"
    path.write_text(text)
    with pytest.raises(ClassListError, match=rf"not a class list: entry 1 is a {kind}, not an object"):
        load_class_list(str(path))


@pytest.mark.parametrize("text", ["", " \n\t\n"], ids=["empty", "blank"])
def test_empty_file_is_named_by_its_extension(tmp_path, text):
    json_path, csv_path = tmp_path / "c.json", tmp_path / "c.csv"
    json_path.write_text(text)
    csv_path.write_text(text)
    with pytest.raises(ClassListError, match=r'The class list .*c\.json is empty\. Expected \{"classes": \['):
        load_class_list(str(json_path))
    with pytest.raises(ClassListError, match=r"The CSV .*c\.csv has no rows"):
        load_class_list(str(csv_path))


def test_other_extensions_are_sniffed(tmp_path):
    as_json, as_csv = tmp_path / "a.txt", tmp_path / "b.txt"
    as_json.write_text('[{"id": 2, "prompt": "open water"}]')
    as_csv.write_text("2,open water\n")
    assert load_class_list(str(as_json)) == load_class_list(str(as_csv)) == [ClassInfo(2, "", "", "open water")]


@pytest.mark.parametrize("name, text, message", [
    ("dup.json", '[{"id": 1, "name": "grass"}, {"id": 2, "name": "road"}, {"id": 1, "name": "trees"}]',
     r"Entries 1 and 3 of .*dup.json have the same id \(1\): list each class once"),
    ("dup.csv", "grass,lawn\nroad,asphalt\nGrass ,meadow\n",
     r"Entries 1 and 3 of .*dup.csv have the same name \('Grass'\)"),
])
def test_a_class_listed_twice_is_refused(tmp_path, name, text, message):
    (tmp_path / name).write_text(text)
    with pytest.raises(ClassListError, match=message):
        load_class_list(str(tmp_path / name))


# --------------------------------------------------------------------------- prompts as the text encoder reads them

def _classes(*prompts):
    return [ClassInfo(i, f"class{i}", "", p) for i, p in enumerate(prompts, 1)]


def test_prompts_that_differ_only_after_the_context_are_refused():
    words = " ".join(f"w{i}" for i in range(499))
    warnings = []
    with pytest.raises(ClassListError) as err:
        check_prompts(_classes(words + " forest", words + " water"), warn=warnings.append)
    message = str(err.value)
    assert "'class1' and 'class2'" in message and "differ only after the first 75 words" in message
    assert "within the first 75 words" in message
    assert warnings == [f"The prompt of class 'class{i}' is cut to its first 75 of 500 words "
                        "(the text encoder reads no more)." for i in (1, 2)]


def test_context_length_and_vocabulary_are_the_models():
    check_prompts(_classes("a b c forest", "a b c water"), context_length=6)
    with pytest.raises(ClassListError, match="first 3 words"):
        check_prompts(_classes("a b c forest", "a b c water"), context_length=5)
    # two words hashed into one bucket: the encoder sees one prompt twice
    vocab = 13
    words = {}
    for i in range(1000):
        words.setdefault(zlib.crc32(f"w{i}".encode()) % (vocab - 3), []).append(f"w{i}")
    first, second = next(pair[:2] for pair in words.values() if len(pair) > 1)
    with pytest.raises(ClassListError, match="two of their words share a token"):
        check_prompts(_classes(f"a {first}", f"a {second}"), vocab_size=vocab)
    check_prompts(_classes(f"a {first}", f"a {second}"))


def test_same_prompt_in_other_case_and_spacing_is_refused():
    with pytest.raises(ClassListError, match=r"'class1' and 'class3' have the same prompt 'a  Pixel': every class"):
        check_prompts(_classes("A pixel", "a meadow", "a  Pixel"))


def test_distinct_short_prompts_pass_without_warnings():
    warnings = []
    check_prompts(_classes("open water", "dense forest", "paved road."), warn=warnings.append)
    assert warnings == []
