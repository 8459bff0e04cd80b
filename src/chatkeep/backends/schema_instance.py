"""A deterministic, small JSON value valid against a JSON Schema: the echo model's JSON.

`schema_instance(schema, text)` builds the value top-down, preferring `text` (the echoed
message) for strings wherever the schema allows it. Objects get their required properties
(then optional ones up to `minProperties`), arrays `minItems` items, numbers the value
nearest 0 in range, booleans `false`. `anyOf`/`oneOf` take the first satisfiable branch
(for `oneOf` that is valid when branches are disjoint, as discriminated unions are),
`allOf` is merged, `$ref` to `#...` pointers (`#/$defs/...`, `#/definitions/...`) is
followed, and a `$ref` met again inside its own expansion counts as unsatisfiable so a
recursive schema ends at its first non-recursive branch. When two merged schemas both set
a keyword this module cannot combine (two `pattern`s), the first wins. Ignored keywords:
`not`, `if`/`then`/`else`, `propertyNames`, `dependentSchemas`, `unevaluated*`.

Strings with a `pattern`: candidates (the text, then strings built from the pattern's
parse tree) are checked with `re.search`; when none fits, the string built from the pattern
with the fewest repetitions is returned, which may not match (a lookaround, say). Known
`format`s (date-time, date, time, email, uri, uuid, hostname, ipv4, ipv6, ...) give a fixed
valid example. A schema with no valid instance raises `UnsatisfiableSchemaError`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from fractions import Fraction
from typing import Any

from chatkeep.backends.patterns import (
    MAX_SIZE,
    UnsatisfiableSchemaError,
    pattern_search,
    strings_for_pattern,
)

EXAMPLE_URI, EXAMPLE_HOST, EXAMPLE_EMAIL = "https://example.com/", "example.com", "a@example.com"
FORMAT_EXAMPLES = {
    **dict.fromkeys(("uri", "uri-reference", "iri", "iri-reference"), EXAMPLE_URI),
    **dict.fromkeys(("hostname", "idn-hostname"), EXAMPLE_HOST),
    **dict.fromkeys(("email", "idn-email"), EXAMPLE_EMAIL),
    "date-time": "2024-01-01T00:00:00Z",
    "date": "2024-01-01",
    "time": "00:00:00Z",
    "duration": "P1D",
    "ipv4": "127.0.0.1",
    "ipv6": "::1",
    "uuid": "00000000-0000-4000-8000-000000000000",
    "json-pointer": "/a",
    "regex": ".*",
}
JSON_TYPES = ("object", "array", "string", "integer", "number", "boolean", "null")
# Keywords that imply a type when a schema leaves `type` out.
TYPE_HINTS = {
    "object": ("properties", "required", "additionalProperties", "minProperties"),
    "array": ("items", "prefixItems", "minItems", "contains"),
    "string": ("minLength", "maxLength", "pattern", "format"),
    "number": ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"),
}
LOWER_BOUNDS = ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties")
UPPER_BOUNDS = ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties")
MAX_REF_DEPTH = 64
UNIQUE_ATTEMPTS = 16


def schema_instance(schema: Any, text: str | None = None) -> Any:
    """A deterministic instance of `schema`, using `text` for strings where it is valid."""
    try:
        return _Generator(schema, text).generate(schema)
    except RecursionError:
        raise UnsatisfiableSchemaError("the schema is nested too deeply") from None
    except UnsatisfiableSchemaError:
        raise
    except (TypeError, ValueError, AttributeError, KeyError, IndexError) as error:
        # A keyword of the wrong JSON type (`"required": 5`) is the client's to fix, not a 500.
        raise UnsatisfiableSchemaError(f"the schema is malformed ({error})") from None


def minimum_size(schema: dict[str, Any], keyword: str, default: int = 0) -> int:
    """A `minLength`/`minItems`/... value, refused above MAX_SIZE."""
    value = int(schema.get(keyword, default))
    if value > MAX_SIZE:
        raise UnsatisfiableSchemaError(f"{keyword} {value} is above {MAX_SIZE}")
    return value


def json_type_of(value: Any) -> str:
    """The JSON Schema type name of a decoded JSON value (`integer` for whole numbers)."""
    if isinstance(value, float) and value.is_integer():
        return "integer"
    names = {bool: "boolean", int: "integer", float: "number", str: "string", list: "array"}
    return "null" if value is None else names.get(type(value), "object")


class _Generator:
    def __init__(self, root: Any, text: str | None) -> None:
        self.root = root
        self.text = text
        self.active_refs: list[str] = []

    def generate(self, schema: Any, variant: int = 0) -> Any:
        """An instance of `schema`; `variant` > 0 asks for a different one (`uniqueItems`)."""
        schema = self.flatten(schema)
        ref = schema.get("$ref")
        if isinstance(ref, str):
            if ref in self.active_refs:
                raise UnsatisfiableSchemaError(f"recursive $ref {ref!r} has no way out")
            self.active_refs.append(ref)
            try:
                rest = {k: v for k, v in schema.items() if k != "$ref"}
                return self.generate(merge(self.flatten(self.resolve(ref)), rest), variant)
            finally:
                self.active_refs.pop()
        if "const" in schema:
            return schema["const"]
        if "enum" in schema:
            return self.from_enum(schema, variant)
        if "anyOf" in schema or "oneOf" in schema:
            return self.first_branch(schema, variant)
        failure = UnsatisfiableSchemaError("no type of the schema has an instance")
        for name in schema_types(schema, self.text is not None):
            try:
                return self.by_type(name)(schema, variant)
            except UnsatisfiableSchemaError as error:
                failure = error  # the last type's reason is the one to report
        raise failure

    def flatten(self, schema: Any, depth: int = 0) -> dict[str, Any]:
        """`schema` as a dict with its `allOf` merged in (booleans become {} or an error)."""
        if schema is True:
            return {}
        if not isinstance(schema, dict):
            raise UnsatisfiableSchemaError("the schema `false` has no instance")
        if depth > MAX_REF_DEPTH:
            raise UnsatisfiableSchemaError("allOf/$ref nesting too deep")
        node = normalize(schema)
        parts = node.pop("allOf", None)
        if not isinstance(parts, list):
            return node
        for part in parts:
            flat = self.flatten(part, depth + 1)
            ref = flat.pop("$ref", None)
            if isinstance(ref, str) and ref not in self.active_refs:
                # Merging needs the referenced keywords; recursion is caught by `depth`.
                flat = merge(self.flatten(self.resolve(ref), depth + 1), flat)
            elif isinstance(ref, str):
                flat["$ref"] = ref  # left for `generate` to reject as recursive
            node = merge(node, flat)
        return node

    def resolve(self, ref: str) -> Any:
        """The schema a local `$ref` (`#`, `#/$defs/x`, `#/definitions/x`, any `#/...`) names."""
        if not ref.startswith("#"):
            raise UnsatisfiableSchemaError(f"only local $ref is supported, not {ref!r}")
        target = self.root
        for raw in filter(None, ref[1:].split("/")):
            key = raw.replace("~1", "/").replace("~0", "~")
            if isinstance(target, dict) and key in target:
                target = target[key]
            elif isinstance(target, list) and key.isdigit() and int(key) < len(target):
                target = target[int(key)]
            else:
                raise UnsatisfiableSchemaError(f"$ref {ref!r} points nowhere")
        return target

    def by_type(self, name: str) -> Callable[[dict[str, Any], int], Any]:
        makers = {"object": self.make_object, "array": self.make_array}
        if name in ("integer", "number"):
            return lambda schema, variant: make_number(schema, variant, name == "integer")
        if name in ("boolean", "null"):
            return lambda schema, variant: bool(variant % 2) if name == "boolean" else None
        return makers.get(name, self.make_string)

    def from_enum(self, schema: dict[str, Any], variant: int) -> Any:
        fitting = [value for value in schema["enum"] if self.fits(schema, value)]
        if not fitting:
            raise UnsatisfiableSchemaError(f"no member of enum {schema['enum']!r} fits")
        if variant == 0 and self.text in fitting:
            return self.text
        return fitting[variant] if variant < len(fitting) else fitting[0]

    def fits(self, schema: dict[str, Any], value: Any) -> bool:
        """Whether an enum member passes the type and the string constraints beside it."""
        kind = json_type_of(value)
        types = declared_types(schema)
        if types and kind not in types and not (kind == "integer" and "number" in types):
            return False
        return kind != "string" or string_fits(value, schema)

    def first_branch(self, schema: dict[str, Any], variant: int) -> Any:
        rest = {k: v for k, v in schema.items() if k not in ("anyOf", "oneOf")}
        branches = schema.get("anyOf") or schema.get("oneOf") or []
        if "anyOf" in schema and "oneOf" in schema:
            branches = [{"allOf": [a, b]} for a in schema["anyOf"] for b in schema["oneOf"]]
        for branch in branches:
            try:
                return self.generate(merge(rest, self.flatten(branch)), variant)
            except UnsatisfiableSchemaError:
                continue
        raise UnsatisfiableSchemaError("no anyOf/oneOf branch has an instance")

    def make_object(self, schema: dict[str, Any], variant: int) -> dict[str, Any]:
        properties = schema.get("properties") or {}
        keys = list(dict.fromkeys(schema.get("required") or []))
        at_least = minimum_size(schema, "minProperties")
        keys += [k for k in properties if k not in keys][: max(0, at_least - len(keys))]
        extra = (f"property{i}" for i in range(1, 1_000_000))
        while len(keys) < at_least:
            keys.append(next(k for k in extra if k not in properties and k not in keys))
        for key in list(keys):
            keys += [d for d in schema.get("dependentRequired", {}).get(key, []) if d not in keys]
        if len(keys) > schema.get("maxProperties", math.inf):
            raise UnsatisfiableSchemaError("required properties exceed maxProperties")
        return {
            key: self.generate(self.property_schema(schema, key), variant if i == 0 else 0)
            for i, key in enumerate(keys)
        }

    def property_schema(self, schema: dict[str, Any], key: str) -> Any:
        """The schema a property's value must meet: its own, matching patterns, or the rest."""
        parts = [schema["properties"][key]] if key in schema.get("properties", {}) else []
        for pattern, sub in (schema.get("patternProperties") or {}).items():
            if pattern_search(pattern, key):
                parts.append(sub)
        if not parts and schema.get("additionalProperties") is False:
            raise UnsatisfiableSchemaError(f"property {key!r} is required but not allowed")
        if not parts:
            return schema.get("additionalProperties", True)
        return parts[0] if len(parts) == 1 else {"allOf": parts}

    def make_array(self, schema: dict[str, Any], variant: int) -> list[Any]:
        items = schema.get("items", True)
        prefix = schema.get("prefixItems") or []
        if isinstance(items, list):  # drafts 4-7 spell prefixItems as an `items` list
            prefix, items = items, schema.get("additionalItems", True)
        contains = schema.get("contains")
        needed = minimum_size(schema, "minContains", 1) if contains is not None else 0
        count = max(minimum_size(schema, "minItems"), needed)
        if count > schema.get("maxItems", math.inf):
            raise UnsatisfiableSchemaError("minItems exceeds maxItems")
        result: list[Any] = []
        for i in range(count):
            item = prefix[i] if i < len(prefix) else items
            if i < needed:
                item = {"allOf": [item, contains]}
            result.append(self.array_item(item, result, variant, schema))
        return result

    def array_item(self, item: Any, earlier: list[Any], variant: int, schema: Any) -> Any:
        value = self.generate(item, variant)
        if not schema.get("uniqueItems"):
            return value
        # Other variants of the item schema, until one differs from the items before it.
        for attempt in range(1, UNIQUE_ATTEMPTS):
            if value not in earlier:
                break
            value = self.generate(item, variant + attempt)
        return value

    def make_string(self, schema: dict[str, Any], variant: int) -> str:
        candidates = list(dict.fromkeys(self.string_candidates(schema)))
        fitting = [c for c in candidates if string_fits(c, schema)]
        if fitting:
            return fitting[variant] if variant < len(fitting) else fitting[0]
        pattern = schema.get("pattern")
        if isinstance(pattern, str):
            return next(strings_for_pattern(pattern, minimum_size(schema, "minLength")), "")
        raise UnsatisfiableSchemaError("no string meets minLength/maxLength")

    def string_candidates(self, schema: dict[str, Any]) -> Iterator[str]:
        if schema.get("format") in FORMAT_EXAMPLES:
            yield FORMAT_EXAMPLES[schema["format"]]
            return  # other candidates would not be in the format
        if self.text is not None:
            yield self.text
            yield self.text[: schema.get("maxLength", len(self.text))]
        if isinstance(schema.get("pattern"), str):
            yield from strings_for_pattern(schema["pattern"], minimum_size(schema, "minLength"))
        shortest = minimum_size(schema, "minLength")
        yield "a" * shortest
        for letter in "bcdefghijklmnopq":
            yield letter * max(shortest, 1)


def normalize(schema: dict[str, Any]) -> dict[str, Any]:
    """Draft-4 boolean `exclusiveMinimum`/`exclusiveMaximum` turned into the numeric form."""
    out = dict(schema)
    for exclusive, bound in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if isinstance(out.get(exclusive), bool) and out.pop(exclusive) and bound in out:
            out[exclusive] = out.pop(bound)
    return out


def merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """One schema that demands what both `a` and `b` demand (see the module docstring)."""
    out = dict(a)
    for key, value in b.items():
        if key not in out:
            out[key] = value
        elif key == "properties":
            out[key] = {**out[key]}
            for name, sub in value.items():
                out[key][name] = {"allOf": [out[key][name], sub]} if name in out[key] else sub
        elif key == "required":
            out[key] = list(dict.fromkeys([*out[key], *value]))
        elif key == "type":
            out[key] = intersect_types(declared_types(out), declared_types(b))
        elif key in LOWER_BOUNDS:
            out[key] = max(out[key], value)
        elif key in UPPER_BOUNDS:
            out[key] = min(out[key], value)
        elif key == "enum":
            out[key] = [v for v in out[key] if v in value]
        elif key == "const" and out[key] != value:
            raise UnsatisfiableSchemaError("two different consts")
        elif key in ("anyOf", "oneOf"):
            out[key] = [{"allOf": [x, y]} for x in out[key] for y in value]
        elif key in ("items", "additionalProperties", "contains") and out[key] != value:
            out[key] = {"allOf": [out[key], value]}
        elif key == "uniqueItems":
            out[key] = bool(out[key] or value)
    return out


def declared_types(schema: dict[str, Any]) -> list[str]:
    declared = schema.get("type")
    if isinstance(declared, str):
        return [declared]
    return [t for t in declared if isinstance(t, str)] if isinstance(declared, list) else []


def intersect_types(a: list[str], b: list[str]) -> list[str]:
    both = [t for t in a if t in b]
    both += [t for t in ("integer",) if ("number" in a and t in b) or ("number" in b and t in a)]
    if not both:
        raise UnsatisfiableSchemaError(f"types {a} and {b} do not overlap")
    return list(dict.fromkeys(both))


def schema_types(schema: dict[str, Any], have_text: bool) -> list[str]:
    """The types to try, in order: as declared (null last, so the text shows), else implied."""
    types = [t for t in declared_types(schema) if t in JSON_TYPES]
    if not types:
        types = [name for name, hints in TYPE_HINTS.items() if any(h in schema for h in hints)]
        if not types:
            types = ["string", "null"] if have_text else ["null"]
    if schema.get("nullable") is True:
        types.append("null")
    return sorted(dict.fromkeys(types), key=lambda t: t == "null")


def string_fits(value: str, schema: dict[str, Any]) -> bool:
    """Whether `value` meets the schema's minLength, maxLength and pattern.

    A pattern Python cannot compile is taken as met: there is nothing better to check with.
    One whose matching would run away raises `UnsatisfiableSchemaError`.
    """
    if not schema.get("minLength", 0) <= len(value) <= schema.get("maxLength", math.inf):
        return False
    pattern = schema.get("pattern")
    return not isinstance(pattern, str) or pattern_search(pattern, value)


Bound = tuple[Fraction, bool] | None  # a value, and whether it is exclusive


def make_number(schema: dict[str, Any], variant: int, integer: bool) -> int | float:
    """The multiple of `multipleOf` in range nearest 0 (or the `variant`-th one after it)."""
    low, high = bound(schema, "minimum", upper=False), bound(schema, "maximum", upper=True)
    step = Fraction(str(schema["multipleOf"])) if "multipleOf" in schema else None
    # Whole numbers first: validators check `multipleOf` of fractions in fragile floats.
    found = on_grid(Fraction(step.numerator if step else 1), low, high, variant)
    # Without a step, half the range is one: an open range 2 steps wide holds a multiple.
    fine = step or ((high[0] - low[0]) / 2 if low and high and high[0] > low[0] else None)
    if found is None and not integer and fine:
        found = on_grid(fine, low, high, variant)
    if found is None:
        raise UnsatisfiableSchemaError("no number meets the bounds and multipleOf")
    return int(found) if found.denominator == 1 else float(found)


def bound(schema: dict[str, Any], name: str, *, upper: bool) -> Bound:
    """The tighter of `name` and its exclusive twin; at equal values the exclusive one."""
    found = [
        (Fraction(str(value)), exclusive)
        for key, exclusive in ((name, False), ("exclusive" + name.capitalize(), True))
        if isinstance(value := schema.get(key), int | float) and not isinstance(value, bool)
    ]
    if not found:
        return None
    return min(found, key=lambda b: (b[0], not b[1])) if upper else max(found)


def within(value: Fraction, low: Bound, high: Bound) -> bool:
    above = low is None or value > low[0] or (value == low[0] and not low[1])
    below = high is None or value < high[0] or (value == high[0] and not high[1])
    return above and below


def on_grid(step: Fraction, low: Bound, high: Bound, variant: int) -> Fraction | None:
    """The multiple of `step` in range nearest 0, moved `variant` steps on if that fits."""
    value = Fraction(0)
    if low is not None and not within(value, low, None):
        value = math.ceil(low[0] / step) * step
        value += step if not within(value, low, None) else 0
    elif high is not None and not within(value, None, high):
        value = math.floor(high[0] / step) * step
        value -= step if not within(value, None, high) else 0
    steps = [*range(variant, variant + 8), -variant, 0]
    fitting = [value + k * step for k in steps if within(value + k * step, low, high)]
    # Validators divide floats: prefer a multiple whose float quotient is whole (0.3 / 0.1
    # is not), so that every validator agrees it is a multiple.
    exact = (v for v in fitting if (float(v) / float(step)).is_integer())
    return next(exact, fitting[0] if fitting else None)
