"""Class lists: ids, names, colours and prompts, and the JSON/CSV files that carry them."""
from __future__ import annotations

import codecs
import csv
import json
import locale
import os
from dataclasses import asdict, dataclass
from typing import Dict, Iterable, List, Optional

DEFAULT_PROMPT_TEMPLATE = "a multimodal fusion patch of a {name}."
CLASS_LIST_FORMAT = "diffclip-classes"
EXPECTED_JSON = '{"classes": [{"id": 1, "name": ..., "colour": ..., "prompt": ...}]}'

# Distinct, colour-blind friendly first (Okabe-Ito, then Tableau-like), cycled beyond.
PALETTE = [
    "#0072b2", "#e69f00", "#009e73", "#d55e00", "#cc79a7", "#56b4e9", "#f0e442",
    "#000000", "#8c564b", "#7f7f7f", "#bcbd22", "#17becf", "#9467bd", "#2ca02c",
    "#ff9896", "#c5b0d5", "#c49c94", "#dbdb8d", "#9edae5", "#393b79",
]


@dataclass
class ClassInfo:
    """One class of a classification: output value, display name, colour and text prompt."""

    id: int
    name: str
    colour: str = ""
    prompt: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def palette_colour(index: int) -> str:
    """A distinct colour for the index-th class (0-based)."""
    return PALETTE[index % len(PALETTE)]


def fill_prompt(name: str, template: str = DEFAULT_PROMPT_TEMPLATE) -> str:
    """The template with ``{name}`` replaced by the class name."""
    return template.replace("{name}", name)


def complete_classes(classes: Iterable[ClassInfo], template: str = DEFAULT_PROMPT_TEMPLATE) -> List[ClassInfo]:
    """Classes sorted by id, missing colours from the palette and missing prompts from the template."""
    out = []
    for index, c in enumerate(sorted(classes, key=lambda c: c.id)):
        out.append(ClassInfo(
            id=int(c.id),
            name=c.name or f"class {c.id}",
            colour=c.colour or palette_colour(index),
            prompt=c.prompt.strip() if c.prompt and c.prompt.strip() else fill_prompt(c.name or f"class {c.id}", template),
        ))
    return out


class ClassListError(ValueError):
    """A class-list file that cannot be used; the message says why and what to do."""


def save_class_list(path: str, classes: Iterable[ClassInfo]) -> None:
    """Write the class list as the JSON the dock saves and ``PROMPTS`` reads (atomically)."""
    data = {"format": CLASS_LIST_FORMAT, "version": 1, "classes": [c.as_dict() for c in classes]}
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, ensure_ascii=False)
        f.write("\n")
    os.replace(tmp, path)


def load_class_list(path: str) -> List[ClassInfo]:
    """Read a class list: our JSON (object with ``classes`` or a bare list) or a CSV.

    The CSV has two columns, class name or id, and prompt (a header row is optional).
    The format follows the extension; other files are sniffed. Entries may leave out
    fields; :func:`match_prompts` fills them in later.
    """
    if not os.path.isfile(path):
        raise ClassListError(f"Class/prompt file not found: {path}. Choose an existing .json or .csv file.")
    ext = os.path.splitext(path)[1].lower()
    with open(path, "rb") as f:
        text = _decode(path, f.read(), fallback=ext != ".json")
    if ext == ".json" or (ext != ".csv" and text.lstrip().startswith(("{", "["))):
        entries = _parse_json(path, text)
    else:
        entries = _parse_csv(path, text)
    _check_unique(path, entries)
    return entries


def _check_unique(path: str, entries: List[ClassInfo]) -> None:
    """Each id and each name once: a second entry would silently lose to the first."""
    for what, key in (("id", lambda e: e.id or None), ("name", lambda e: e.name.strip().lower() or None)):
        seen: Dict[object, int] = {}
        for n, entry in enumerate(entries, 1):
            value = key(entry)
            if value is not None and value in seen:
                raise ClassListError(f"Entries {seen[value]} and {n} of {path} have the same {what} "
                                     f"({entry.id if what == 'id' else entry.name!r}): list each class once.")
            if value is not None:
                seen[value] = n


def _decode(path: str, raw: bytes, fallback: bool) -> str:
    """UTF-8 text (with or without BOM), else, with ``fallback``, text in the system encoding (as QGIS reads CSV)."""
    nul = raw.find(b"\0")
    if nul >= 0:
        raise ClassListError(f"The class list {path} is not a text file: line {_line_at(raw, nul)} has a NUL byte "
                             "(binary or UTF-16). Save it as UTF-8 text (.json or .csv).")
    raw = raw[len(codecs.BOM_UTF8):] if raw.startswith(codecs.BOM_UTF8) else raw
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        error = ClassListError(f"The class list {path} is not UTF-8 text: line {_line_at(raw, e.start)} has a byte "
                               f"(0x{raw[e.start]:02x}) that is not UTF-8. Save it as UTF-8 and load it again.")
    if fallback:
        try:
            return raw.decode(locale.getpreferredencoding(False))
        except (UnicodeDecodeError, LookupError):
            pass
    raise error


def _line_at(raw: bytes, offset: int) -> int:
    return raw.count(b"\n", 0, offset) + 1


def _parse_json(path: str, text: str) -> List[ClassInfo]:
    if not text.strip():
        raise ClassListError(f"The class list {path} is empty. Expected {EXPECTED_JSON}.")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ClassListError(f"The class list {path} is not valid JSON ({e}). Fix the file or save it again from the DiffCLIP dock.") from e
    except RecursionError:
        raise ClassListError(f"{path} is not a class list: its JSON is nested too deeply. Expected {EXPECTED_JSON}.") from None
    items = data.get("classes") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise ClassListError(f"The class list {path} has no 'classes' list. Expected {EXPECTED_JSON}.")
    out = []
    for n, item in enumerate(items, 1):
        if not isinstance(item, dict):
            raise ClassListError(f"{path} is not a class list: entry {n} is a {type(item).__name__}, not an object. "
                                 f"Expected {EXPECTED_JSON}.")
        if "id" not in item and "name" not in item:
            raise ClassListError(f"Entry {n} of {path} needs an 'id' or a 'name': {item!r}")
        try:
            cid = int(item["id"]) if item.get("id") not in (None, "") else 0
        except (TypeError, ValueError):
            raise ClassListError(f"Entry {n} of {path} has a non-integer id {item.get('id')!r}.") from None
        out.append(ClassInfo(id=cid, name=str(item.get("name", "") or ""),
                             colour=str(item.get("colour", item.get("color", "")) or ""),
                             prompt=str(item.get("prompt", "") or "")))
    return out


def _parse_csv(path: str, text: str) -> List[ClassInfo]:
    rows = [r for r in csv.reader(text.splitlines()) if r and any(cell.strip() for cell in r)]
    if rows and rows[0][0].strip().lower() in ("name", "id", "class", "class_id", "class_name"):
        rows = rows[1:]
    out = []
    for n, row in enumerate(rows, 1):
        if len(row) < 2:
            raise ClassListError(f"Row {n} of {path} needs two columns (class name or id, prompt); got {row!r}.")
        key, prompt = row[0].strip(), ",".join(row[1:]).strip()
        if key.lstrip("-").isdigit():
            out.append(ClassInfo(id=int(key), name="", prompt=prompt))
        else:
            out.append(ClassInfo(id=0, name=key, prompt=prompt))
    if not out:
        raise ClassListError(f"The CSV {path} has no rows. Write one 'class,prompt' row per class.")
    return out


def matching_entry(found: ClassInfo, entries: Optional[List[ClassInfo]]) -> Optional[ClassInfo]:
    """The class-list entry of a class found in the samples: by name (case-insensitive) when the samples
    name it (a text class field, whose ids are only its values' ranks), else by id (an integer class field)."""
    if found.name:
        return next((e for e in entries or [] if e.name and e.name.lower() == found.name.lower()), None)
    return next((e for e in entries or [] if e.id and e.id == found.id), None)


def match_prompts(classes: List[ClassInfo], entries: Optional[List[ClassInfo]],
                  template: str = DEFAULT_PROMPT_TEMPLATE) -> List[ClassInfo]:
    """Merge class-list entries (see :func:`matching_entry`) into the classes found in the samples."""
    merged = []
    for c in classes:
        e = matching_entry(c, entries)
        if e is None:
            merged.append(c)
        else:
            merged.append(ClassInfo(id=c.id, name=c.name or e.name or "", colour=e.colour or c.colour,
                                    prompt=e.prompt or c.prompt))
    return complete_classes(merged, template)
