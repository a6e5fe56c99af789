"""Schema and loader for the quickstart generator's content (:mod:`embexp.data.quickstart`).

The content (articles, phrasing templates, product catalogue, device families, boilerplate,
customer noise) is package data: the JSON files in ``embexp/data/quickstart_content/``.
:func:`load_content` reads them into the frozen dataclasses below (one per JSON shape) and
validates them on load: unknown or missing fields, wrong types and broken cross-references
raise :class:`ContentError`, whose message names the file and the field. List and object
order in the files matters to the generator (it fixes the order of random draws), so the
loader keeps it. Pure standard library.
"""

from __future__ import annotations

import functools
import json
from dataclasses import MISSING, dataclass, fields, is_dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

__all__ = ["PRODUCT_LINES", "Content", "ContentError", "load_content"]

PRODUCT_LINES = ("payments", "cards", "hardware", "billing", "security", "shipping")

# ---------------------------------------------------------------------------------------
# Content schema: one dataclass per JSON shape in quickstart_content/.
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Topic:
    """A hand-written article; ``cores`` are customer phrasings, ``head`` topics get the
    most traffic."""

    key: str
    title: str
    body: str
    cores: tuple[str, ...]
    head: bool = False


@dataclass(frozen=True)
class LineTopics:
    """A product line's hand-written articles; ``near_miss`` topics share vocabulary with
    another article but answer a different question."""

    articles: tuple[Topic, ...]
    near_miss: tuple[Topic, ...]


@dataclass(frozen=True)
class AchCode:
    """An ACH return code: what it means, what to do, how customers describe it."""

    code: str
    short: str
    what: str
    action: str
    customer: tuple[str, ...]


@dataclass(frozen=True)
class AchCodes:
    codes: tuple[AchCode, ...]
    cores: tuple[str, ...]  # jargon phrasings shared by every code ("{code}" slot)


@dataclass(frozen=True)
class EntityTopic:
    """An article template written once per catalogue entity (card product, plan, ...)."""

    key: str
    title: str
    body: str
    cores: tuple[str, ...]


@dataclass(frozen=True)
class CardProduct:
    product: str
    words: tuple[str, ...]  # customer words for it ({slang})
    inhouse: str  # staff codename ({inhouse}); the KB never uses it
    kind: str
    facts: dict[str, str]


@dataclass(frozen=True)
class Plan:
    name: str
    desc: tuple[str, ...]  # customer descriptions ({desc})
    pcode: str  # plan code on invoices
    facts: dict[str, str]


@dataclass(frozen=True)
class PaymentMethod:
    name: str
    words: tuple[str, ...]
    jargon: str  # {jkey} in cores
    facts: dict[str, str]


@dataclass(frozen=True)
class Region:
    name: str
    words: tuple[str, ...]
    facts: dict[str, str]


@dataclass(frozen=True)
class Catalog:
    card_products: tuple[CardProduct, ...]
    card_topics: tuple[EntityTopic, ...]
    plans: tuple[Plan, ...]
    plan_topics: tuple[EntityTopic, ...]
    payment_methods: tuple[PaymentMethod, ...]
    method_topics: tuple[EntityTopic, ...]
    regions: tuple[Region, ...]
    region_topics: tuple[EntityTopic, ...]


@dataclass(frozen=True)
class Variant:
    """One SKU of a device family; variants differ by suffix, connection and power."""

    suffix: str
    label: str  # short description for the title
    conn: str
    pair: str
    power: str
    battery: bool
    hints: tuple[str, ...]  # how customers describe this variant ("the bluetooth one")


@dataclass(frozen=True)
class ErrorCode:
    code: str
    meaning: str
    what: str
    fix: str


@dataclass(frozen=True)
class Family:
    """A hardware device family. The KB titles devices by ``brand`` (marketing name);
    customers type the model ``code`` from the label."""

    code: str
    brand: str
    name: str
    slang: tuple[str, ...]
    issues: tuple[str, ...]  # keys of Hardware.issues
    variants: tuple[Variant, ...]
    reset: str
    error_codes: tuple[ErrorCode, ...] = ()


@dataclass(frozen=True)
class Template:
    title: str
    body: str
    cores: tuple[str, ...] = ()


@dataclass(frozen=True)
class Hardware:
    """Device families and their article templates. Named slots: {sku}, {name}, {conn},
    {pair}, {power}, {reset}, {label}, {brand}, {prod}; in cores, {s} is the device as a
    customer types it."""

    families: tuple[Family, ...]
    issues: dict[str, Template]
    specs: Template
    spec_extras: tuple[str, ...]
    error: Template
    error_words: dict[str, tuple[str, ...]]  # error code -> how customers describe it
    release_notes: Template


@dataclass(frozen=True)
class Noise:
    """Customer noise: frames around the question, misspellings."""

    prefixes: tuple[str, ...]
    context: tuple[str, ...]  # unrelated context before the question
    suffixes: tuple[str, ...]
    misspellings: dict[str, tuple[str, ...]]


@dataclass(frozen=True)
class Content:
    lines: dict[str, LineTopics]  # product line -> hand-written topics
    ach: AchCodes
    catalog: Catalog
    hardware: Hardware
    boilerplate: dict[str, tuple[str, ...]]  # product line -> sentences appended to bodies
    noise: Noise


_FILES = {
    "lines": "articles.json",
    "ach": "ach_codes.json",
    "catalog": "catalog.json",
    "hardware": "hardware.json",
    "boilerplate": "boilerplate.json",
    "noise": "noise.json",
}


class ContentError(ValueError):
    """A quickstart content file is missing or malformed; the message names file and field."""


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return get_type_hints(cls)


def _convert(tp: Any, value: Any, file: object, loc: str) -> Any:
    """Check parsed JSON ``value`` against the annotation ``tp`` and build it."""

    def fail(msg: str) -> ContentError:
        return ContentError(f"{file}: {loc or 'top level'}: {msg}")

    origin, args = get_origin(tp), get_args(tp)
    if is_dataclass(tp):
        if not isinstance(value, dict):
            raise fail(f"expected an object, got {type(value).__name__}")
        names = [f.name for f in fields(tp)]
        unknown = [k for k in value if k not in names]
        if unknown:
            raise fail(f"unknown field {unknown[0]!r} (expected {', '.join(names)})")
        kwargs = {}
        for f in fields(tp):
            sub = f"{loc}.{f.name}" if loc else f.name
            if f.name in value:
                kwargs[f.name] = _convert(_hints(tp)[f.name], value[f.name], file, sub)
            elif f.default is MISSING:
                raise fail(f"missing required field {f.name!r}")
        return tp(**kwargs)
    if origin is tuple:
        if not isinstance(value, list):
            raise fail(f"expected a list, got {type(value).__name__}")
        return tuple(_convert(args[0], v, file, f"{loc}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise fail(f"expected an object, got {type(value).__name__}")
        return {k: _convert(args[1], v, file, f"{loc}.{k}" if loc else k) for k, v in value.items()}
    if tp in (str, bool):
        if not isinstance(value, tp):
            raise fail(f"expected {tp.__name__}, got {type(value).__name__}")
        return value
    raise TypeError(f"unsupported content type {tp!r}")


def _check_refs(c: Content, root: Any) -> None:
    """Cross-references the schema alone cannot check."""

    def fail(name: str, loc: str, msg: str) -> ContentError:
        return ContentError(f"{root / name}: {loc}: {msg}")

    for line in c.lines:
        if line not in PRODUCT_LINES:
            raise fail("articles.json", line, f"unknown product line (expected one of {PRODUCT_LINES})")
    for line in PRODUCT_LINES:
        if line not in c.boilerplate:
            raise fail(
                "boilerplate.json",
                "top level",
                f"missing required field {line!r} (every product line needs boilerplate)",
            )
    hw = c.hardware
    if not hw.families:
        raise fail("hardware.json", "families", "at least one device family is required")
    for i, fam in enumerate(hw.families):
        for j, issue in enumerate(fam.issues):
            if issue not in hw.issues:
                raise fail("hardware.json", f"families[{i}].issues[{j}]", f"no issue template {issue!r}")
        for j, err in enumerate(fam.error_codes):
            if err.code not in hw.error_words:
                raise fail(
                    "hardware.json",
                    f"families[{i}].error_codes[{j}].code",
                    f"{err.code!r} has no entry in error_words",
                )


def load_content(directory: str | Path | None = None) -> Content:
    """Read and validate the content files from ``directory`` (default: the package data)."""
    root: Any = files("embexp.data") / "quickstart_content" if directory is None else Path(directory)
    parts = {}
    for name, filename in _FILES.items():
        path = root / filename
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise ContentError(f"{path}: cannot read quickstart content: {e}") from e
        parts[name] = _convert(_hints(Content)[name], raw, path, "")
    content = Content(**parts)
    _check_refs(content, root)
    return content
