"""Config sections as dataclasses: each option says its default and which values it takes.

`SomeSection.read(mapping, where)` fills in the defaults and refuses an unknown key or a bad value
with one ConfigError naming the key (`model.encoder.dropout: expected a number in [0, 1), got 1.5`);
`to_dict()` gives the plain values back, as config.yaml and model files store them. A section whose
options depend on a type (`model.encoder`, `objective.mix`, `training.strategy_opts`) is `OneOf`
its variants. The model (asrkit.models.build), SpecAugment, the objectives, EMA, the
synchronisation strategies and the training config that holds them all declare their options here.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from asrkit.errors import ConfigError

S = TypeVar("S", bound="Section")


# --- what values an option takes ------------------------------------------------------------------

@dataclass(frozen=True)
class Kind:
    """The values an option takes. `wanted` completes "expected ..."; `test` says whether a value
    fits after `convert` (which may raise ValueError/TypeError for a value that does not)."""

    wanted: str
    test: Callable[[Any], bool]
    convert: Callable[[Any], Any] = lambda v: v

    def check(self, value: Any, where: str) -> Any:
        """`value` converted, or a ConfigError naming `where`."""
        try:
            converted = self.convert(value)
            ok = self.test(converted)
        except (TypeError, ValueError, OverflowError):
            ok = False
        if not ok:
            raise ConfigError(f"{where}: expected {self.wanted}, got {value!r}")
        return converted


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _to_int(v: Any) -> Any:
    # YAML 1.1 reads `1e6` as a string; an integral number written that way is still an integer.
    if isinstance(v, str):
        v = float(v) if any(c in v for c in ".eE") else int(v)
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v


def _to_float(v: Any) -> Any:
    # YAML 1.1 reads `1e-3` (no dot) as a string: where a number is wanted, take it as one.
    if isinstance(v, str):
        return float(v)
    if _is_int(v):
        return float(v)
    return v


def integer(minimum: int | None = None) -> Kind:
    """An integer, at least `minimum`."""
    wanted = {None: "an integer", 0: "a non-negative integer", 1: "a positive integer"}.get(
        minimum, f"an integer >= {minimum}")
    return Kind(wanted, lambda v: _is_int(v) and (minimum is None or v >= minimum), _to_int)


def number(low: float | None = None, high: float | None = None, *, low_open: bool = False,
           high_open: bool = False) -> Kind:
    """A float (an integer is taken as one) in the given range."""
    if low is not None and high is not None:
        wanted = f"a number in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    elif low is not None:
        wanted = f"a number {'>' if low_open else '>='} {low:g}"
    else:
        wanted = "a number"

    def test(v: Any) -> bool:
        if not isinstance(v, float) or not math.isfinite(v):
            return False
        if low is not None and (v <= low if low_open else v < low):
            return False
        return high is None or (v < high if high_open else v <= high)

    return Kind(wanted, test, _to_float)


def one_of(*choices: Any) -> Kind:
    """One of `choices` (compared with ==, so a bool is not 1)."""
    def test(v: Any) -> bool:
        return any(v == c and type(v) is type(c) for c in choices)

    wanted = "one of " + ", ".join(str(c).lower() if isinstance(c, bool) else str(c) for c in choices)
    return Kind(wanted, test)


def optional(kind: Kind) -> Kind:
    """`kind`, or null."""
    return Kind(f"{kind.wanted} or null", lambda v: v is None or kind.test(v),
                lambda v: None if v is None else kind.convert(v))


BOOL = Kind("true or false", lambda v: isinstance(v, bool))
TEXT = Kind("a string", lambda v: isinstance(v, str) and v != "")
INT_LIST = Kind("a non-empty list of positive integers",
                lambda v: isinstance(v, list) and len(v) > 0 and all(_is_int(x) and x > 0 for x in v),
                lambda v: [_to_int(x) for x in v] if isinstance(v, (list, tuple)) else v)
POSITIVE_INT = integer(1)
NON_NEGATIVE_INT = integer(0)
PROBABILITY = number(0.0, 1.0, high_open=True)
FRACTION = number(0.0, 1.0)
POSITIVE = number(0.0, low_open=True)
NON_NEGATIVE = number(0.0)


def option(default: Any, kind: Kind, *, omit_none: bool = False) -> Any:
    """A dataclass field holding a value of `kind` (`omit_none`: left out of `to_dict()` while None)."""
    meta = {"kind": kind, "omit_none": omit_none}
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: copy.deepcopy(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


# --- sections --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class OneOf:
    """A section whose options depend on a name: the section's own `type` key, or the value of an
    option beside it in the parent section (`selected_by`, e.g. `training.strategy`).

    `variants` are Section classes, each with its name in the class attribute `type`; `default` is
    the variant of a section that names none (None: the name is required).
    """

    variants: tuple[type[Section], ...]
    default: str | None = None
    selected_by: str | None = None

    def names(self) -> list[str]:
        return [v.type for v in self.variants]

    def variant(self, name: Any, where: str) -> type[Section]:
        for v in self.variants:
            if v.type == name:
                return v
        raise ConfigError(f"{where}: expected one of {', '.join(self.names())}, got {name!r}")

    def note(self, name: str) -> str:
        return f" for {self.selected_by or 'type'} '{name}'"

    def read(self, data: Mapping | Section | None, where: str, name: str | None = None) -> Section:
        """The variant named `name` (by default the mapping's `type`) read from `data`; an instance of
        a variant is returned as it is."""
        if isinstance(data, self.variants):
            return data
        sub = dict(_mapping(data, where))
        if name is None:
            name = sub.pop("type", self.default)
            if name is None:
                raise ConfigError(f"{where}.type: missing (choose one of {', '.join(self.names())})")
        # (A name given by a selecting option has passed that option's own check already.)
        return self.variant(name, _join(where, "type")).read(sub, where, note=self.note(name))


def section(of: type[Section] | OneOf, default: Any = dataclasses.MISSING, *, optional: bool = False,
            omit_none: bool = False) -> Any:
    """A dataclass field holding a nested section (`optional`: it may be null, and is by default)."""
    meta = {"section": of, "optional": optional, "omit_none": omit_none}
    if optional and default is dataclasses.MISSING:
        return dataclasses.field(default=None, metadata=meta)
    if default is dataclasses.MISSING:
        if isinstance(of, OneOf):
            return dataclasses.field(default_factory=lambda: of.variant(of.default, "?")(), metadata=meta)
        return dataclasses.field(default_factory=of, metadata=meta)
    return dataclasses.field(default_factory=lambda: copy.deepcopy(default), metadata=meta)


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


class Section:
    """Base of the config dataclasses (subclasses are `@dataclass`es whose fields are `option`s and
    `section`s). Hooks: `aliases` (extra keys `prepare` turns into options), `prepare` (before the
    options are read), `validate` (checks across options, after)."""

    type: ClassVar[str] = ""
    aliases: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def read(cls: type[S], data: Mapping | S | None, where: str, *, note: str = "") -> S:
        """The section from a mapping of plain values (None: all defaults); an instance is returned as it is.

        Raises:
            ConfigError: an unknown key, a value of the wrong kind, or a failed `validate`, naming the key.
        """
        if isinstance(data, cls):
            return data
        raw = _mapping(data, where)
        raw = cls.prepare(dict(raw), where)
        _refuse_unknown(cls, raw, where, note)
        values: dict[str, Any] = {}
        fields = dataclasses.fields(cls)  # type: ignore[arg-type]
        for f in fields:  # plain options first: a OneOf may be selected by one of them
            if "kind" in f.metadata:
                value = raw[f.name] if f.name in raw else _default(f)
                values[f.name] = f.metadata["kind"].check(value, _join(where, f.name))
        for f in fields:
            if "section" in f.metadata:
                values[f.name] = _read_section(f, raw, values, where)
        obj = cls(**values)
        obj.validate(where)
        return obj

    @classmethod
    def prepare(cls, data: dict, where: str) -> dict:
        """Rewrite aliases (`cls.aliases`) into options before reading; the default does nothing."""
        return data

    def validate(self, where: str) -> None:
        """Check (or derive) values across options; raise ConfigError naming the key."""

    def to_dict(self) -> dict:
        """The plain values (nested sections as dicts with their `type` where they pick one)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if value is None and f.metadata.get("omit_none"):
                continue
            if isinstance(value, Section):
                of = f.metadata.get("section")
                tagged = isinstance(of, OneOf) and of.selected_by is None
                value = {"type": value.type, **value.to_dict()} if tagged else value.to_dict()
            else:
                value = copy.deepcopy(value)
            out[f.name] = value
        return out

    @classmethod
    def check_keys(cls, data: Any, where: str, *, note: str = "") -> None:
        """Refuse unknown keys anywhere in `data`, without checking values: a later layer of a config
        may still complete them. A section that is not a mapping is left to `read`."""
        if not isinstance(data, Mapping):
            return
        _refuse_unknown(cls, data, where, note)
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            of = f.metadata.get("section")
            if of is None or not isinstance(data.get(f.name), Mapping):
                continue
            sub, here = dict(data[f.name]), _join(where, f.name)
            if not isinstance(of, OneOf):
                of.check_keys(sub, here)
                continue
            name = data.get(of.selected_by, _default_of(cls, of.selected_by)) if of.selected_by \
                else sub.pop("type", of.default)
            variant = of.variant(name, _join(where, of.selected_by) if of.selected_by else _join(here, "type"))
            variant.check_keys(sub, here, note=of.note(name))


def _mapping(data: Any, where: str) -> Mapping:
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where or 'config'}: expected a mapping of options, got {data!r}")
    return data


def _default(f: dataclasses.Field) -> Any:
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return f.default


def _default_of(cls: type[Section], name: str) -> Any:
    return next(_default(f) for f in dataclasses.fields(cls) if f.name == name)  # type: ignore[arg-type]


def _refuse_unknown(cls: type[Section], data: Mapping, where: str, note: str) -> None:
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    known = [f.name for f in fields] + list(cls.aliases)
    unknown = [k for k in data if k not in known and not (k == "type" and cls.type)]
    if unknown:
        noun = "section(s)" if fields and all("section" in f.metadata for f in fields) else "option(s)"
        head = f"{where}: " if where else ""
        raise ConfigError(f"{head}unknown {noun} {', '.join(map(repr, unknown))}{note} "
                          f"(known: {', '.join(known) or 'none'})")


def _read_section(f: dataclasses.Field, raw: Mapping, values: Mapping, where: str) -> Section | None:
    of, here = f.metadata["section"], _join(where, f.name)
    data = raw.get(f.name)
    if data is None:
        if f.metadata["optional"]:
            return None
        data = {}  # read, not the field's default: defaults are validated (and derived) like any value
    if not isinstance(of, OneOf):
        return of.read(data, here)
    return of.read(data, here, values[of.selected_by] if of.selected_by else None)


def merge(cls: type[Section], base: Mapping | None, override: Mapping | None) -> dict:
    """`override` laid over `base` (plain mappings of a `cls` section; neither is changed).

    Options are replaced and nested sections merged key by key, except where the override picks
    another variant of a OneOf (a new `type`, or a new value of the option that selects it): that
    section starts over from the override's keys, since the old variant's options mean nothing to
    the new one. Unknown keys are carried along for `read` to report.
    """
    base = dict(base or {})
    out = copy.deepcopy(base)
    override = dict(override or {})
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        of = f.metadata.get("section")
        if isinstance(of, OneOf) and of.selected_by in override and f.name not in override \
                and override[of.selected_by] != base.get(of.selected_by, _default_of(cls, of.selected_by)):
            out.pop(f.name, None)  # e.g. a new strategy: the old strategy's options are dropped
    sections = {f.name: f.metadata["section"] for f in dataclasses.fields(cls)  # type: ignore[arg-type]
                if "section" in f.metadata}
    for key, value in override.items():
        of, old = sections.get(key), out.get(key)
        if of is None or not isinstance(value, Mapping) or not isinstance(old, Mapping):
            out[key] = copy.deepcopy(value)
            continue
        if not isinstance(of, OneOf):
            out[key] = merge(of, old, value)
            continue
        if of.selected_by:
            old_name = base.get(of.selected_by, _default_of(cls, of.selected_by))
            name = override.get(of.selected_by, old_name)
        else:
            old_name = old.get("type", of.default)
            name = value.get("type", old_name)
        if name != old_name or name not in of.names():
            out[key] = copy.deepcopy(dict(value))
        else:
            out[key] = merge(of.variant(name, key), old, value)
    return out
