"""Unsafe-content categories: the default (Llama Guard 3's S1-S14) or a taxonomy file.

A taxonomy file (YAML or JSON, at any fsspec URI) is either a list of categories or an object with a
`categories` list; each category has a `code`, a `name` and optionally a `description`:

    categories:
      - code: S1
        name: Violent Crimes
        description: Responses that enable, encourage, or endorse violent crimes.   # optional
      - code: O2
        name: Weapons

Codes are what the classifier writes on its second output line, comma-separated, so they must be
short tokens without commas or spaces (letters, digits, `_`, `-`, starting with a letter) and unique.
The order in the file is the order in the prompt. Pure Python (+ pyyaml for YAML files).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

CODE_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,15}$")


class TaxonomyError(ValueError):
    """A taxonomy file that cannot be used; the message names the file, the entry and the field."""


@dataclass(frozen=True)
class Category:
    code: str
    name: str
    description: str = ""


@dataclass(frozen=True)
class Taxonomy:
    """An ordered set of categories; `codes` in prompt order."""

    categories: tuple[Category, ...]

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(c.code for c in self.categories)

    def name_of(self, code: str) -> str:
        for c in self.categories:
            if c.code == code:
                return c.name
        raise KeyError(code)

    def ordered(self, codes: Iterable[str]) -> list[str]:
        """`codes` deduplicated and sorted in taxonomy order (unknown codes are dropped)."""
        wanted = set(codes)
        return [c for c in self.codes if c in wanted]

    def subset(self, codes: Sequence[str]) -> Taxonomy:
        """The categories with these codes, in the order given (used by augmentation)."""
        by_code = {c.code: c for c in self.categories}
        return Taxonomy(tuple(by_code[code] for code in codes))

    def to_list(self) -> list[dict[str, str]]:
        return [{"code": c.code, "name": c.name, **({"description": c.description} if c.description else {})}
                for c in self.categories]


# Llama Guard 3 (Meta, 2024), built on the MLCommons AI Safety hazard taxonomy.
DEFAULT_TAXONOMY = Taxonomy(tuple(Category(code, name) for code, name in (
    ("S1", "Violent Crimes"),
    ("S2", "Non-Violent Crimes"),
    ("S3", "Sex-Related Crimes"),
    ("S4", "Child Sexual Exploitation"),
    ("S5", "Defamation"),
    ("S6", "Specialized Advice"),
    ("S7", "Privacy"),
    ("S8", "Intellectual Property"),
    ("S9", "Indiscriminate Weapons"),
    ("S10", "Hate"),
    ("S11", "Suicide & Self-Harm"),
    ("S12", "Sexual Content"),
    ("S13", "Elections"),
    ("S14", "Code Interpreter Abuse"),
)))


def from_data(data: Any, where: str = "taxonomy") -> Taxonomy:
    """Build a Taxonomy from parsed YAML/JSON; raises TaxonomyError naming `where`, the entry and the field."""
    if isinstance(data, dict):
        if "categories" not in data:
            raise TaxonomyError(f"{where}: expected a list of categories or an object with 'categories', "
                                f"got an object with keys {sorted(data)}")
        data = data["categories"]
    if not isinstance(data, list) or not data:
        raise TaxonomyError(f"{where}: expected a non-empty list of categories, got {json.dumps(data)[:60]}")
    categories, seen = [], set()
    for i, entry in enumerate(data):
        at = f"{where}: categories[{i}]"
        if not isinstance(entry, dict):
            raise TaxonomyError(f"{at}: expected an object with 'code' and 'name', got {type(entry).__name__}")
        unknown = set(entry) - {"code", "name", "description"}
        if unknown:
            raise TaxonomyError(f"{at}: unknown field(s) {sorted(unknown)}; expected code, name, description")
        code, name, desc = entry.get("code"), entry.get("name"), entry.get("description", "")
        if not isinstance(code, str) or not CODE_RE.match(code):
            raise TaxonomyError(f"{at}.code: expected a short code of letters, digits, '_' or '-' starting "
                                f"with a letter (no commas or spaces), e.g. 'S1'; got {code!r}")
        if code in seen:
            raise TaxonomyError(f"{at}.code: duplicate code {code!r}")
        if not isinstance(name, str) or not name.strip() or "\n" in name:
            raise TaxonomyError(f"{at}.name: expected one line of non-blank text, got {name!r}")
        if desc is None:
            desc = ""
        if not isinstance(desc, str):
            raise TaxonomyError(f"{at}.description: expected text, got {type(desc).__name__}")
        seen.add(code)
        categories.append(Category(code, name.strip().rstrip("."), desc.strip()))
    return Taxonomy(tuple(categories))


def load_taxonomy(uri: str | None) -> Taxonomy:
    """The taxonomy in the YAML/JSON file at `uri`; the default (S1-S14) when `uri` is None or ''."""
    if not uri:
        return DEFAULT_TAXONOMY
    from kubealign import storage

    try:
        raw = storage.read_bytes(uri).decode("utf-8")
    except UnicodeDecodeError:
        raise TaxonomyError(f"{uri}: expected UTF-8 text") from None
    except storage.StorageError as err:
        raise TaxonomyError(f"taxonomy: {err}") from None
    try:
        if uri.lower().endswith(".json"):
            data = json.loads(raw)
        else:
            import yaml

            data = yaml.safe_load(raw)
    except (json.JSONDecodeError, ValueError) as err:
        raise TaxonomyError(f"{uri}: not valid JSON/YAML ({err})") from None
    except Exception as err:  # yaml.YAMLError does not derive from ValueError
        raise TaxonomyError(f"{uri}: not valid YAML ({str(err).splitlines()[0]})") from None
    return from_data(data, uri)


__all__ = ["CODE_RE", "DEFAULT_TAXONOMY", "Category", "Taxonomy", "TaxonomyError", "from_data", "load_taxonomy"]
