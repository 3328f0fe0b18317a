"""Config sections as dataclasses: each option says its default and which values it takes.

`SomeSection.read(mapping, where)` fills in the defaults and refuses an unknown key or a bad value
with one ConfigError naming the key (`model.encoder.dropout: expected a number in [0, 1), got 1.5`);
`to_dict()` gives the plain values back, as config.yaml and model files store them. A section whose
options depend on a type (`model.encoder`, `objective.mix`, `training.strategy_opts`) is `OneOf`
its variants. How an error is worded is a section's `Wording`: the training config's sections, the
EMA and strategy options and the model's type names keep the wording users had before they were
declared here. The model (asrkit.models.build), SpecAugment, the objectives, EMA, the
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
    fits after `convert` (which may raise ValueError/TypeError for a value that does not).

    For the older "must be ..." wordings: `rule` completes "must be ..." ("in [0, 1)", ">= 1";
    empty: the option had no such check), `choices` are a `one_of`'s values and `numeric` marks a
    number, which a string that does not convert is refused as.
    """

    wanted: str
    test: Callable[[Any], bool]
    convert: Callable[[Any], Any] = lambda v: v
    rule: str = ""
    choices: tuple = ()
    numeric: bool = False

    def check(self, value: Any, where: str, wording: Wording | None = None) -> Any:
        """`value` converted, or a ConfigError naming `where` (worded by `wording`, the schema's by default)."""
        try:
            converted = self.convert(value)
            ok = self.test(converted)
        except (TypeError, ValueError, OverflowError):
            ok = False
        if not ok:
            raise ConfigError((wording or WORDING).bad_value(where, self, value))
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
    return Kind(wanted, lambda v: _is_int(v) and (minimum is None or v >= minimum), _to_int,
                rule="" if minimum is None else f">= {minimum}", numeric=True)


def number(low: float | None = None, high: float | None = None, *, low_open: bool = False,
           high_open: bool = False) -> Kind:
    """A float (an integer is taken as one) in the given range."""
    if low is not None and high is not None:
        rule = f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    elif low is not None:
        rule = "positive" if low == 0 and low_open else f"{'>' if low_open else '>='} {low:g}"
    else:
        rule = ""
    wanted = f"a number {f'> {low:g}' if rule == 'positive' else rule}".rstrip()

    def test(v: Any) -> bool:
        if not isinstance(v, float) or not math.isfinite(v):
            return False
        if low is not None and (v <= low if low_open else v < low):
            return False
        return high is None or (v < high if high_open else v <= high)

    return Kind(wanted, test, _to_float, rule=rule, numeric=True)


def one_of(*choices: Any) -> Kind:
    """One of `choices` (compared with ==, so a bool is not 1)."""
    def test(v: Any) -> bool:
        return any(v == c and type(v) is type(c) for c in choices)

    names = [str(c).lower() if isinstance(c, bool) else str(c) for c in choices]
    rule = " or ".join(names) if len(names) < 3 else f"{', '.join(names[:-1])} or {names[-1]}"
    return Kind("one of " + ", ".join(names), test, rule=rule, choices=tuple(names))


def optional(kind: Kind) -> Kind:
    """`kind`, or null."""
    return Kind(f"{kind.wanted} or null", lambda v: v is None or kind.test(v),
                lambda v: None if v is None else kind.convert(v), rule=kind.rule and f"{kind.rule} or null")


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


# --- how errors are worded ------------------------------------------------------------------------

def _listed(names: list[str] | tuple[str, ...]) -> str:
    return ", ".join(names)


class Wording:
    """How a section words its errors: the schema's own wording (`model.encoder.dropout: expected
    a number in [0, 1), got 1.5`). The subclasses below keep the wording of the code that checked
    those options before this module, since users and scripts match on it."""

    def unknown(self, where: str, unknown: list[str], known: list[str], choice: tuple[str, str] | None,
                noun: str) -> str:
        """Keys `unknown` in the section at `where` (`choice`: the (selector, name) of a OneOf variant)."""
        head = f"{where}: " if where else ""
        note = f" for {choice[0]} '{choice[1]}'" if choice else ""
        return f"{head}unknown {noun} {_listed([repr(k) for k in unknown])}{note} (known: {_listed(known) or 'none'})"

    def bad_value(self, where: str, kind: Kind, value: Any) -> str:
        """`value` at `where` is not one of `kind`'s values."""
        return f"{where}: expected {kind.wanted}, got {value!r}"

    def bad_name(self, where: str, names: list[str], name: Any) -> str:
        """`name` (at `where`) names no variant of a OneOf."""
        return f"{where}: expected one of {_listed(names)}, got {name!r}"

    def not_mapping(self, where: str, data: Any) -> str:
        return f"{where or 'config'}: expected a mapping of options, got {data!r}"


class TrainingConfigWording(Wording):
    """The training config's own sections (data, optim, scheduler, training), as the defaults table
    of asrkit.training.config worded them: the first unknown key with its full name, and for the
    choices, positive numbers and numbers it checked, its sentences; newer checks say it the
    schema's way."""

    def unknown(self, where, unknown, known, choice, noun):
        return f"unknown config key '{_join(where, unknown[0])}' (known keys here: {_listed(sorted(known)) or '(none)'})"

    def bad_value(self, where, kind, value):
        if kind.choices:
            return f"config '{where}' is '{value}'; choose one of {_listed(kind.choices)}"
        number = value
        if kind.numeric and isinstance(value, str):
            try:
                number = kind.convert(value)
            except (TypeError, ValueError, OverflowError):
                return f"config key '{where}' must be a number, not '{value}'"
        if kind.rule in ("positive", ">= 1") and isinstance(number, (int, float)) and number <= 0:
            return f"config '{where}' must be a positive number, not {number!r}"
        return super().bad_value(where, kind, value)

    def not_mapping(self, where, data):
        return f"config key '{where}' must be a mapping, not {data!r}"


class OptionsWording(Wording):
    """The EMA and strategy options, as their classes worded them: `training.ema.decay must be in
    [0, 1), not 1.0`, `training.strategy_opts: momentum not used by strategy 'bmuf' (known: ...)`."""

    def unknown(self, where, unknown, known, choice, noun):
        if choice:
            return (f"{where}: {_listed(sorted(unknown))} not used by {choice[0]} '{choice[1]}' "
                    f"(known: {_listed(sorted(known)) or '(none)'})")
        return f"unknown key(s) in {where}: {_listed(sorted(unknown))} (known: {_listed(known)})"

    def bad_value(self, where, kind, value):
        if kind.rule:
            return f"{where} must be {kind.rule}, not {value!r}"
        return super().bad_value(where, kind, value)


class ModelWording(Wording):
    """The model's typed parts (encoder, head, predictor, joiner): an unknown type is `unknown type
    'tdnn' (choose from dnn, lstm, conformer, emformer)`, as the model builder said it."""

    def bad_name(self, where, names, name):
        return f"{where}: unknown type {name!r} (choose from {_listed(names)})"


class ConfigKeysWording(Wording):
    """The sections the training config's defaults table listed key by key (model, objective):
    their unknown keys as it worded them; their values the schema's way, as before."""

    unknown = TrainingConfigWording.unknown


WORDING = Wording()
TRAINING_CONFIG_WORDING = TrainingConfigWording()
CONFIG_KEYS_WORDING = ConfigKeysWording()
OPTIONS_WORDING = OptionsWording()
MODEL_WORDING = ModelWording()


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
    the variant of a section that names none (None: the name is required); `wording` words an
    unknown name.
    """

    variants: tuple[type[Section], ...]
    default: str | None = None
    selected_by: str | None = None
    wording: Wording = WORDING

    def names(self) -> list[str]:
        return [v.type for v in self.variants]

    def variant(self, name: Any, where: str) -> type[Section]:
        for v in self.variants:
            if v.type == name:
                return v
        raise ConfigError(self.wording.bad_name(where, self.names(), name))

    def choice(self, name: str) -> tuple[str, str]:
        """(selector, name) of the variant `name`, for the errors of its options."""
        return self.selected_by or "type", name

    def read(self, data: Mapping | Section | None, where: str, name: str | None = None) -> Section:
        """The variant named `name` (by default the mapping's `type`) read from `data`; an instance of
        a variant is returned as it is."""
        if isinstance(data, self.variants):
            return data
        sub = dict(_mapping(data, where, self.wording))
        if name is None:
            name = sub.pop("type", self.default)
            if name is None:
                raise ConfigError(f"{where}.type: missing (choose one of {', '.join(self.names())})")
        # (A name given by a selecting option has passed that option's own check already.)
        return self.variant(name, _join(where, "type")).read(sub, where, choice=self.choice(name))


def section(of: type[Section] | OneOf, default: Any = dataclasses.MISSING, *, optional: bool = False,
            empty_is_off: bool = False, omit_none: bool = False) -> Any:
    """A dataclass field holding a nested section (`optional`: it may be null, and is by default;
    `empty_is_off`: an optional section given as `{}` is null too, i.e. a feature is on only when
    one of its options is given)."""
    meta = {"section": of, "optional": optional, "empty_is_off": empty_is_off, "omit_none": omit_none}
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
    options are read), `validate` (checks across options, after); `wording` words its errors."""

    type: ClassVar[str] = ""
    aliases: ClassVar[tuple[str, ...]] = ()
    wording: ClassVar[Wording] = WORDING

    @classmethod
    def read(cls: type[S], data: Mapping | S | None, where: str, *, choice: tuple[str, str] | None = None) -> S:
        """The section from a mapping of plain values (None: all defaults); an instance is returned as it is.

        Raises:
            ConfigError: an unknown key, a value of the wrong kind, or a failed `validate`, naming the key.
        """
        if isinstance(data, cls):
            return data
        raw = _mapping(data, where, cls.wording)
        raw = cls.prepare(dict(raw), where)
        _refuse_unknown(cls, raw, where, choice)
        values: dict[str, Any] = {}
        fields = dataclasses.fields(cls)  # type: ignore[arg-type]
        for f in fields:  # plain options first: a OneOf may be selected by one of them
            if "kind" in f.metadata:
                value = raw[f.name] if f.name in raw else _default(f)
                values[f.name] = f.metadata["kind"].check(value, _join(where, f.name), cls.wording)
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
    def check_keys(cls, data: Any, where: str, *, choice: tuple[str, str] | None = None) -> None:
        """Refuse unknown keys anywhere in `data`, without checking values: a later layer of a config
        may still complete them. A section that is not a mapping is left to `read`."""
        if not isinstance(data, Mapping):
            return
        _refuse_unknown(cls, data, where, choice)
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
            variant.check_keys(sub, here, choice=of.choice(name))


def _mapping(data: Any, where: str, wording: Wording) -> Mapping:
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ConfigError(wording.not_mapping(where, data))
    return data


def _default(f: dataclasses.Field) -> Any:
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return f.default


def _default_of(cls: type[Section], name: str) -> Any:
    return next(_default(f) for f in dataclasses.fields(cls) if f.name == name)  # type: ignore[arg-type]


def _refuse_unknown(cls: type[Section], data: Mapping, where: str, choice: tuple[str, str] | None) -> None:
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    known = [f.name for f in fields] + list(cls.aliases)
    unknown = [k for k in data if k not in known and not (k == "type" and cls.type)]
    if unknown:
        noun = "section(s)" if fields and all("section" in f.metadata for f in fields) else "option(s)"
        raise ConfigError(cls.wording.unknown(where, unknown, known, choice, noun))


def _read_section(f: dataclasses.Field, raw: Mapping, values: Mapping, where: str) -> Section | None:
    of, here = f.metadata["section"], _join(where, f.name)
    data = raw.get(f.name)
    if data is None or (f.metadata["empty_is_off"] and isinstance(data, Mapping) and not data):
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
