"""The only YAML reader: load a scenario, apply `--set key=value` overrides, explain errors.

Errors name the file, the dotted field path, the offending value and, where the field is a closed set, the
allowed values with a "did you mean" hint.
"""

from __future__ import annotations

import copy
import difflib
import warnings
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ..errors import ScenarioError
from ..learning.former_variants import FORMER_VARIANTS, former_variant_message, upgrade_former_variant
from .schema import Scenario

RETIRED_SETTINGS: dict[tuple[str, str], str] = {
    ("diffusion", "objective"): "the method decides the diffusion objective (c2gr, c2gr-norups: bjd; c2gr-njd, gr: "
                                "njd), so nothing read this setting",
    ("federation", "evaluate_every_department"): "every department always evaluates its own tasks after each round; "
                                                 "nothing read this setting",
}
"""Settings that scenarios once declared and nothing reads: tolerated with a warning, then dropped."""


class RetiredSettingWarning(UserWarning):
    """A scenario sets a key that nothing reads any more; it is ignored."""


def _format_loc(loc: tuple[Any, ...], raw: Any) -> str:
    """Turn pydantic's location tuple into a readable path, naming departments and tasks by name."""
    parts: list[str] = []
    node = raw
    for item in loc:
        if isinstance(item, int):
            label = f"[{item}]"
            if isinstance(node, list) and 0 <= item < len(node):
                child = node[item]
                if isinstance(child, dict) and isinstance(child.get("name"), str):
                    label = f"[{item}:{child['name']}]"
                node = child
            else:
                node = None
            parts.append(label)
        else:
            # discriminated unions insert the tag ("phantom") into the location: skip it
            if isinstance(node, dict) and item not in node and item in {"phantom", "folder2d", "nifti3d"}:
                continue
            parts.append(("." if parts else "") + str(item))
            node = node.get(item) if isinstance(node, dict) else None
    return "".join(parts) or "<top level>"


def _value_at(raw: Any, loc: tuple[Any, ...]) -> Any:
    node = raw
    for item in loc:
        try:
            node = node[item]
        except (KeyError, IndexError, TypeError):
            return "<missing>"
    return node


def _explain(err: ValidationError, raw: Any, source: str) -> ScenarioError:
    lines = [f"{source}: invalid scenario ({err.error_count()} problem{'s' if err.error_count() > 1 else ''})"]
    for e in err.errors():
        loc = tuple(e["loc"])
        path = _format_loc(loc, raw)
        msg = e["msg"]
        value = e.get("input")
        if e["type"] == "extra_forbidden":
            allowed = _allowed_keys(loc[:-1], raw)
            hint = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
            msg = f"unknown key {loc[-1]!r}" + (f" (did you mean {hint[0]!r}?)" if hint else "")
            if allowed:
                msg += f"; allowed keys: {', '.join(sorted(allowed))}"
            lines.append(f"  - {path}: {msg}")
            continue
        if e["type"] in ("literal_error", "union_tag_invalid"):
            expected = (e.get("ctx") or {}).get("expected") or (e.get("ctx") or {}).get("expected_tags")
            words = [w.strip(" '") for w in str(expected).replace(" or ", ",").split(",")] if expected else []
            hint = difflib.get_close_matches(str(value), words, n=1)
            msg = f"{value!r} is not allowed; allowed values: {expected}" + (f" (did you mean {hint[0]!r}?)" if hint else "")
            lines.append(f"  - {path}: {msg}")
            continue
        shown = value if not isinstance(value, (dict, list)) else _short(value)
        if e["type"] == "missing":
            lines.append(f"  - {path}: required field is missing")
        else:
            lines.append(f"  - {path} = {shown!r}: {msg}")
    return ScenarioError("\n".join(lines))


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) < 120 else text[:117] + "..."


def _allowed_keys(parent_loc: tuple[Any, ...], raw: Any) -> list[str]:
    """Field names of the model at parent_loc, found by walking the schema."""
    from pydantic import BaseModel

    model: Any = Scenario
    node = raw
    for item in parent_loc:
        if isinstance(item, int):
            node = node[item] if isinstance(node, list) and item < len(node) else None
            continue
        if item in {"phantom", "folder2d", "nifti3d"}:
            continue
        field = getattr(model, "model_fields", {}).get(item)
        if field is None:
            return []
        node = node.get(item) if isinstance(node, dict) else None
        model = _model_of(field.annotation, node)
        if model is None:
            return []
    if isinstance(model, type) and issubclass(model, BaseModel):
        return list(model.model_fields)
    return []


def _model_of(annotation: Any, node: Any) -> Any:
    import typing

    from pydantic import BaseModel

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_of(arg, node)
        if found is not None:
            if isinstance(node, dict) and "kind" in node and "kind" in getattr(found, "model_fields", {}):
                default = found.model_fields["kind"].default
                if default != node["kind"]:
                    continue
            return found
    return None


def parse_override(text: str) -> tuple[list[str], Any]:
    """`training.epochs=3` -> (["training", "epochs"], 3). The value is parsed as YAML (numbers, lists, null)."""
    if "=" not in text:
        raise ScenarioError(f"override {text!r}: expected KEY=VALUE, e.g. training.epochs=3")
    key, _, value = text.partition("=")
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ScenarioError(f"override {text!r}: the key {key!r} is not a dotted field path")
    try:
        parsed = yaml.safe_load(value) if value.strip() else ""
    except yaml.YAMLError as exc:
        raise ScenarioError(f"override {text!r}: the value is not valid YAML ({exc})") from None
    return key.split("."), parsed


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply dotted overrides to the raw mapping. List items are addressed by index or by `name`."""
    out = copy.deepcopy(raw)
    for text in overrides:
        path, value = parse_override(text)
        node: Any = out
        for i, part in enumerate(path[:-1]):
            node = _step(node, part, text, create=True)
        last = path[-1]
        if isinstance(node, list):
            idx = _index(node, last, text)
            node[idx] = value
        elif isinstance(node, dict):
            node[last] = value
        else:
            raise ScenarioError(f"override {text!r}: {'.'.join(path[:-1])} is not a section")
    return out


def _index(node: list[Any], part: str, text: str) -> int:
    if part.isdigit():
        i = int(part)
        if i >= len(node):
            raise ScenarioError(f"override {text!r}: index {i} is past the end (length {len(node)})")
        return i
    for i, item in enumerate(node):
        if isinstance(item, dict) and item.get("name") == part:
            return i
    names = [item.get("name") for item in node if isinstance(item, dict)]
    raise ScenarioError(f"override {text!r}: no item named {part!r}; items: {names}")


def _step(node: Any, part: str, text: str, create: bool) -> Any:
    if isinstance(node, list):
        return node[_index(node, part, text)]
    if isinstance(node, dict):
        if part not in node or node[part] is None:
            if not create:
                raise ScenarioError(f"override {text!r}: no field {part!r}")
            node[part] = {}
        return node[part]
    raise ScenarioError(f"override {text!r}: cannot descend into {part!r}")


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key repeated in one mapping (PyYAML silently keeps the last one)."""


def _mapping_without_duplicates(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if key in seen:
            raise yaml.YAMLError(f"key {key!r} appears twice in one mapping (line {seen[key]} and line {line}); "
                                 "a repeated key would silently replace the first")
        seen[key] = line
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)


def read_yaml(path: Path) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise ScenarioError(f"{path}: scenario file not found")
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_StrictLoader)  # noqa: S506 (safe loader subclass)
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ScenarioError(f"{path}: a scenario is a mapping with keys name, departments, ...; got {type(raw).__name__}")
    return raw


def drop_retired_settings(raw: dict[str, Any], source: str = "<scenario>", warn: bool = True) -> dict[str, Any]:
    """`raw` without the RETIRED_SETTINGS it sets (a copy when there are any), each one warned about if `warn`."""
    out = raw
    for (section, key), why in RETIRED_SETTINGS.items():
        node = out.get(section)
        if isinstance(node, dict) and key in node:
            if warn:
                warnings.warn(f"{source}: {section}.{key} is ignored and may be removed: {why}", RetiredSettingWarning,
                              stacklevel=3)
            out = {**out, section: {k: v for k, v in node.items() if k != key}}
    return out


def validate_scenario(raw: dict[str, Any], source: str = "<scenario>", stored: bool = False) -> Scenario:
    """The validated scenario of a raw mapping. A former method variant's name is refused with its replacement,
    unless `stored` (the scenario of an existing run directory, made when the name was a method and retired
    settings were read), where it reads as its method and settings and retired settings are dropped silently."""
    raw = drop_retired_settings(raw, source, warn=not stored)
    if stored:
        raw = upgrade_former_variant(raw)
    method = raw.get("method")
    if isinstance(method, str) and method in FORMER_VARIANTS:
        raise ScenarioError(f"{source}: invalid scenario (1 problem)\n  - method: {former_variant_message(method)}")
    try:
        return Scenario.model_validate(raw)
    except ValidationError as err:
        raise _explain(err, raw, source) from None


def generator_settings_for_method(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """A method chosen by override (`run --method`, `bench --methods`) that trains no generator runs with
    `diffusion.generators: single` and `diffusion.replay_current_images: none`: a scenario tuned for a generator
    bank can still run the baselines that need neither. The resolved scenario records it; a scenario file that
    itself pairs such a method with those settings is refused by validation."""
    from .schema import NO_GENERATOR_METHODS

    chosen = [parse_override(o)[1] for o in overrides if parse_override(o)[0] == ["method"]]
    diffusion = raw.get("diffusion")
    if chosen and chosen[-1] in NO_GENERATOR_METHODS and isinstance(diffusion, dict):
        if diffusion.get("generators") == "bank":
            diffusion = {**diffusion, "generators": "single"}
        if diffusion.get("replay_current_images", "none") != "none":
            diffusion = {**diffusion, "replay_current_images": "none"}
        raw = {**raw, "diffusion": diffusion}
    return raw


def load_scenario(path: str | Path, overrides: list[str] | None = None, stored: bool = False) -> Scenario:
    """Read, override and validate a scenario. Overrides go through exactly the same validation.

    stored: `path` is a run directory's scenario.yaml; one made under a former method variant's name reads as
    that variant's method and settings (c2gr_fed.learning.former_variants)."""
    path = Path(path)
    raw = read_yaml(path)
    if stored:
        raw = upgrade_former_variant(raw)
    if overrides:
        raw = apply_overrides(raw, overrides)
        raw = generator_settings_for_method(raw, overrides)
    raw = drop_retired_settings(raw, str(path), warn=not stored)  # warned once per file, whatever the overrides
    source = str(path) + (f" (with --set {' '.join(overrides)})" if overrides else "")
    return validate_scenario(raw, source, stored=stored)


def dump_scenario(scenario: Scenario) -> str:
    """The resolved scenario as YAML (what a run directory embeds)."""
    return yaml.safe_dump(scenario.model_dump(mode="json"), sort_keys=False, allow_unicode=True)


def scenario_differences(a: Scenario, b: Scenario) -> list[str]:
    """Dotted paths of every setting whose value differs between two scenarios (departments and tasks by name).

    Paths use the `--set` spelling, e.g. `diffusion.ema` or `departments.dermatology.tasks.ISIC18.data.n_train`.
    """

    def flat(node: Any, path: str, out: dict[str, Any]) -> dict[str, Any]:
        if isinstance(node, dict):
            for k, v in node.items():
                flat(v, f"{path}.{k}" if path else str(k), out)
        elif isinstance(node, list) and node and all(isinstance(x, dict) and "name" in x for x in node):
            for x in node:
                flat(x, f"{path}.{x['name']}", out)
        else:
            out[path] = node
        return out

    fa = flat(a.model_dump(mode="json"), "", {})
    fb = flat(b.model_dump(mode="json"), "", {})
    missing = object()
    return sorted(k for k in fa.keys() | fb.keys() if fa.get(k, missing) != fb.get(k, missing))
