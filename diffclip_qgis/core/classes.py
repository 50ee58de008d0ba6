"""Class lists: ids, names, colours and prompts, and the JSON/CSV files that carry them."""
from __future__ import annotations

import csv
import json
import os
from dataclasses import asdict, dataclass
from typing import Dict, Iterable, List, Optional

DEFAULT_PROMPT_TEMPLATE = "a multimodal fusion patch of a {name}."
CLASS_LIST_FORMAT = "diffclip-classes"

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
    Entries may leave out fields; :func:`match_prompts` fills them in later.
    """
    if not os.path.isfile(path):
        raise ClassListError(f"Class/prompt file not found: {path}. Choose an existing .json or .csv file.")
    with open(path, encoding="utf-8-sig") as f:
        text = f.read()
    if path.lower().endswith(".csv") or not text.lstrip().startswith(("{", "[")):
        return _parse_csv(path, text)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ClassListError(f"The class list {path} is not valid JSON ({e}). Fix the file or save it again from the DiffCLIP dock.") from e
    items = data.get("classes") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise ClassListError(f"The class list {path} has no 'classes' list. Expected {{\"classes\": [{{\"id\": 1, \"name\": ..., \"colour\": ..., \"prompt\": ...}}]}}.")
    out = []
    for n, item in enumerate(items, 1):
        if not isinstance(item, dict) or ("id" not in item and "name" not in item):
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


def match_prompts(classes: List[ClassInfo], entries: Optional[List[ClassInfo]],
                  template: str = DEFAULT_PROMPT_TEMPLATE) -> List[ClassInfo]:
    """Merge class-list entries (matched by id, else by name, case-insensitive) into the classes found in the samples."""
    by_id: Dict[int, ClassInfo] = {e.id: e for e in entries or [] if e.id}
    by_name: Dict[str, ClassInfo] = {e.name.lower(): e for e in entries or [] if e.name}
    merged = []
    for c in classes:
        e = by_id.get(c.id) or by_name.get(c.name.lower())
        if e is None:
            merged.append(c)
        else:
            merged.append(ClassInfo(id=c.id, name=c.name or e.name or "", colour=e.colour or c.colour,
                                    prompt=e.prompt or c.prompt))
    return complete_classes(merged, template)
