"""YAML configs: the schema base class, loading, ``key=value`` overrides and error messages.

Generic machinery only; every schema lives beside what it configures (the env schemas in
``egosim.envs.config``, the agent's in ``egosim.agents.config``, ...) and the command line
(``egosim.cli``) knows which schema each shipped file and subcommand uses.

- :class:`StrictModel`: the base of every schema (unknown keys are errors, assignments are
  validated, pairs of keys that set one value are declared in ``same_setting``).
- :func:`load_config`: read a shipped config or a YAML file, apply dotted ``key=value``
  overrides, validate against the caller's schema. Precedence: an override beats the file,
  the file beats the schema's default.
- :class:`ConfigError`: any problem; the message names the file, the key, the value and the
  rule.
"""

from __future__ import annotations

import importlib
import os
import platform
import types
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, ClassVar, TypeVar, Union, get_args, get_origin

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError, model_validator

from egosim.paths import configs_dir

__all__ = [
    "import_callable",
    "machine_description",
    "ConfigError",
    "ConfigValueError",
    "StrictModel",
    "apply_overrides",
    "SeedRange",
    "check_seed_range",
    "dump_config",
    "format_validation_error",
    "is_set",
    "load_config",
    "normalize_overrides",
    "parse_overrides",
    "with_overrides",
]

M = TypeVar("M", bound=BaseModel)


class ConfigError(ValueError):
    """A config file or override is malformed; the message names key, value and rule."""


class ConfigValueError(ValueError):
    """A validator's error about named keys (for rules that span several fields).

    Args:
        keys: the dotted keys the rule is about, relative to the section whose validator
            raises (``("max_dist",)`` in the ``goal`` section reads ``goal.max_dist``).
        message: what is wrong and what is allowed.
    """

    def __init__(self, keys: str | Sequence[str], message: str) -> None:
        super().__init__(message)
        self.keys: tuple[str, ...] = (keys,) if isinstance(keys, str) else tuple(keys)


def is_set(model: BaseModel, dotted: str) -> bool:
    """Whether the dotted key was given explicitly (pydantic's ``model_fields_set`` along the
    path: ``"env.scene.spec"`` needs ``env`` set on ``model``, ``scene`` on ``model.env``
    and ``spec`` on ``model.env.scene``)."""
    node: Any = model
    for part in dotted.split("."):
        if not isinstance(node, BaseModel) or part not in node.model_fields_set:
            return False
        node = getattr(node, part)
    return True


def _get(model: BaseModel, dotted: str) -> Any:
    node: Any = model
    for part in dotted.split("."):
        node = getattr(node, part)
    return node


def _replaced(model: BaseModel, parts: list[str], value: Any) -> BaseModel:
    """A shallow copy of ``model`` with the leaf at ``parts`` set to ``value``; nothing is
    validated and no key is marked as given (the copies keep their ``model_fields_set``)."""
    copy = model.model_copy()
    head = parts[0]
    copy.__dict__[head] = value if len(parts) == 1 else _replaced(getattr(model, head),
                                                                  parts[1:], value)
    return copy


class StrictModel(BaseModel):
    """The base of every config schema: unknown keys are errors, assignments are validated,
    and every float must be finite (NaN and inf are errors naming the key).

    ``same_setting`` lists pairs of dotted keys (a shorthand and the key it stands for, of
    the same type and rules) that set one value. At most one key of a pair may be given in
    one construction (:class:`ConfigValueError` naming both otherwise); after validation
    both hold the given key's value, or the first key's value when neither is given. In
    :func:`load_config` an override of one key of a pair replaces the file's value of the
    other.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    same_setting: ClassVar[tuple[tuple[str, str], ...]] = ()

    @model_validator(mode="after")
    def _one_value_per_setting(self) -> StrictModel:
        for first, second in self.same_setting:
            given = [k for k in (first, second) if is_set(self, k)]
            if len(given) == 2:
                raise ConfigValueError(
                    (first, second), f"both set the same value; give only one of them (got "
                    f"{_get(self, first)!r} and {_get(self, second)!r})")
            source, target = (second, first) if given == [second] else (first, second)
            value = _get(self, source)
            parts = target.split(".")
            self.__dict__[parts[0]] = (value if len(parts) == 1 else
                                       _replaced(getattr(self, parts[0]), parts[1:], value))
        return self


#: Largest seed: seeds are numpy int64 values.
MAX_SEED = 2**63 - 1


def check_seed_range(value: tuple[int, int]) -> tuple[int, int]:
    """Return ``value`` if it is a half-open seed range ``[low, high)`` with
    ``0 <= low < high <= 2**63 - 1`` (seeds are int64); else ValueError (pydantic adds the
    key to the message)."""
    if not 0 <= value[0] < value[1] <= MAX_SEED:
        raise ValueError(f"must be [low, high) with 0 <= low < high <= 2**63 - 1; got "
                         f"{list(value)}")
    return value


#: A validated ``[low, high)`` seed range (for config fields).
SeedRange = Annotated[tuple[int, int], AfterValidator(check_seed_range)]


def parse_overrides(items: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """Parse ``["a.b=1", "c=text"]`` into ``{"a.b": 1, "c": "text"}`` (values as YAML)."""
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form key=value")
        key, raw = item.split("=", 1)
        key = key.strip()
        if not key:
            raise ConfigError(f"override {item!r} has an empty key")
        try:
            out[key] = yaml.safe_load(raw) if raw != "" else ""
        except yaml.YAMLError as exc:
            raise ConfigError(f"override {item!r}: value is not valid YAML ({exc})") from exc
    return out


def _has(data: Mapping[str, Any], dotted: str) -> bool:
    node: Any = data
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False
        node = node[part]
    return True


def _drop(data: dict[str, Any], dotted: str) -> None:
    *parents, leaf = dotted.split(".")
    node: Any = data
    for part in parents:
        node = node.get(part) if isinstance(node, dict) else None
    if isinstance(node, dict):
        node.pop(leaf, None)


def apply_overrides(data: dict[str, Any], overrides: dict[str, Any],
                    same_setting: Sequence[tuple[str, str]] = ()) -> dict[str, Any]:
    """Return a copy of ``data`` with dotted-key ``overrides`` set (nested dicts created).

    ``same_setting``: pairs of dotted keys that set one value (:class:`StrictModel`); where
    the overrides give one key of a pair and not the other, the other is removed from
    ``data``, so the override takes effect.
    """
    result = _deep_copy(data)
    if same_setting:
        given = apply_overrides({}, overrides)
        for first, second in same_setting:
            for key, other in ((first, second), (second, first)):
                if _has(given, key) and not _has(given, other):
                    _drop(result, other)
    for dotted, value in overrides.items():
        node = result
        parts = dotted.split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif not isinstance(child, dict):
                raise ConfigError(f"override {dotted!r}: {part!r} is a value, not a section")
            node = child
        node[parts[-1]] = value
    return result


def _deep_copy(data: dict[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, dict) else v for k, v in data.items()}


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model class an annotation holds (``Model``, ``list[Model]``, ``Model | None``)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if get_origin(annotation) in (list, tuple, Union, types.UnionType):
        for arg in get_args(annotation):
            found = _model_in(arg)
            if found is not None:
                return found
    return None


def _section_fields(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Field names of the (nested) section of ``model`` at ``loc`` (list indices skipped)."""
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(str(part))
        found = _model_in(getattr(field, "annotation", None))
        if found is None:
            return []
        model = found
    return list(model.model_fields)


def format_validation_error(source: str, exc: ValidationError, model: type[BaseModel]) -> str:
    """A readable message for a pydantic error: each bad key, its value and the rule."""
    lines = [f"invalid config {source}:"]
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        key = ".".join(loc)
        msg = err["msg"].removeprefix("Value error, ")
        cause = (err.get("ctx") or {}).get("error")
        if err["type"] == "extra_forbidden":
            allowed = _section_fields(model, tuple(err["loc"][:-1]))
            hint = ""
            if "." in loc[-1]:
                head, rest = loc[-1].split(".", 1)
                hint = (f" (a dotted key inside a section: nest it, {head}: {{{rest}: ...}}, "
                        "or give it as an override)")
            lines.append(f"  unknown key {key!r} (value {err.get('input')!r}); allowed keys "
                         f"here: {', '.join(allowed)}{hint}")
        elif isinstance(cause, ConfigValueError):
            keys = [".".join([*loc, k]) for k in cause.keys]
            names = ", ".join(repr(k) for k in keys)
            lines.append(f"  {'key' if len(keys) == 1 else 'keys'} {names}: {msg}")
        elif not loc:
            lines.append(f"  {msg}")
        else:
            lines.append(f"  key {key!r}: value {err.get('input')!r} is not allowed: {msg}")
    return "\n".join(lines)


def _resolve_path(name_or_path: str | os.PathLike[str]) -> Path:
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") and path.exists():
        return path
    shipped = configs_dir() / f"{name_or_path}.yaml"
    if shipped.exists():
        return shipped
    if path.suffix in (".yaml", ".yml"):
        raise ConfigError(f"config file {str(path)!r} does not exist")
    names = sorted(p.stem for p in configs_dir().glob("*.yaml"))
    raise ConfigError(f"unknown config {str(name_or_path)!r}; shipped configs: {names}, "
                      "or give a path to a .yaml file")


def _validate(data: dict[str, Any], schema: type[M], source: str) -> M:
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(source, exc, schema)) from None


def normalize_overrides(overrides: object) -> dict[str, Any]:
    """Overrides as a dotted-key dict: None or empty -> ``{}``; a dict as it is; one
    ``"key=value"`` string or a list / tuple of them parsed by :func:`parse_overrides`.

    Raises:
        ConfigError: any other type, or an item that is not a ``key=value`` string.
    """
    if overrides is None:
        return {}
    if isinstance(overrides, Mapping):
        return dict(overrides)
    if isinstance(overrides, str):
        return parse_overrides([overrides]) if overrides.strip() else {}
    if isinstance(overrides, (list, tuple)):
        bad = [o for o in overrides if not isinstance(o, str)]
        if bad:
            raise ConfigError(f"overrides must be 'key=value' strings; got {bad[0]!r} "
                              f"({type(bad[0]).__name__})")
        return parse_overrides(overrides)
    raise ConfigError(f"overrides must be a 'key=value' string, a list of them or a dict of "
                      f"dotted keys; got {type(overrides).__name__}")


_parsed = normalize_overrides


def load_config(
    name_or_path: str | os.PathLike[str],
    overrides: list[str] | tuple[str, ...] | dict[str, Any] | None = None,
    *,
    schema: type[M],
) -> M:
    """Load, override and validate a config.

    Args:
        name_or_path: a shipped config name (``"demo"``, a file of ``configs/``) or a path to
            a YAML file.
        overrides: ``["key.sub=value", ...]`` or an already parsed dotted-key dict; they beat
            the file's values (also across the pairs of ``schema.same_setting``).
        schema: the pydantic model to validate against (the caller knows which).

    Raises:
        ConfigError: unreadable YAML, unknown key, or bad value (the message names them).
    """
    path = _resolve_path(name_or_path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config {path} is not valid YAML: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config {path} is not a UTF-8 text file (binary?): {exc}") from None
    except OSError as exc:
        raise ConfigError(f"config {path} cannot be read: {exc.strerror or exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config {path} must be a mapping of keys, got {type(data).__name__}")
    parsed = _parsed(overrides)
    if parsed:
        data = apply_overrides(data, parsed, getattr(schema, "same_setting", ()))
    return _validate(data, schema, str(path))


def dump_config(config: BaseModel, **dump_options: Any) -> dict[str, Any]:
    """``config.model_dump(**dump_options)`` (every key) that validates back to an equal
    config: of each ``same_setting`` pair it keeps only the first key (both hold one value),
    so the dump does not give both."""
    data = config.model_dump(**dump_options)
    for _first, second in getattr(config, "same_setting", ()):
        _drop(data, second)
    return data


def with_overrides(config: M, overrides: list[str] | tuple[str, ...] | dict[str, Any]) -> M:
    """A validated copy of ``config`` with dotted ``key=value`` overrides applied
    (``with_overrides(env_cfg, {"reward.penetration_mode": "strict"})``); every key of the
    copy counts as given.

    Raises:
        ConfigError: an override names an unknown key or a bad value.
    """
    schema = type(config)
    data = apply_overrides(dump_config(config), _parsed(overrides),
                           getattr(schema, "same_setting", ()))
    return _validate(data, schema, f"<{schema.__name__} with overrides>")


def import_callable(path: str, key: str) -> Any:
    """The callable a config names by import path ``'package.module:attribute'`` (the
    attribute may be dotted).

    Raises:
        ValueError: not of that form, the module or attribute does not exist, or it is not
            callable; the message names the config key ``key``.
    """
    module, sep, attr = str(path).partition(":")
    if not sep or not module or not attr:
        raise ValueError(f"{key} {path!r} is not 'package.module:callable' (config key {key})")
    try:
        obj: Any = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"{key} {path!r} cannot be loaded (config key {key}): "
                         f"{type(exc).__name__}: {exc}") from None
    if not callable(obj):
        raise ValueError(f"{key} {path!r} is not callable (config key {key})")
    return obj


def machine_description() -> str:
    """One line for model cards: CPU model and core count (Linux ``/proc/cpuinfo``, else
    ``platform``) and the torch version when torch is imported."""
    import sys

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            names = [ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")]
        cpu = f"{names[0]}, {len(names)} cores" if names else cpu
    except OSError:
        pass
    torch = sys.modules.get("torch")
    return f"{cpu}, torch {torch.__version__}" if torch is not None else cpu
