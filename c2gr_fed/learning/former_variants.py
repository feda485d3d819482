"""Former method variants, each one of the paper's methods plus scenario settings: the one place that says so.

Scenario validation refuses a former variant's name as a method and prints its replacement; `c2gr-fed bench`
accepts the names as arms (`--methods c2gr-v` runs `c2gr` with the variant's settings, labelled `c2gr-v`), and a
stored run's scenario that names one (exported runs) reads as its replacement, so its results still tabulate.
"""

from __future__ import annotations

import copy
import difflib
from typing import Any

FORMER_VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "c2gr-remask": ("c2gr", {"diffusion.replay_masks": "resampled"}),
    "c2gr-v": ("c2gr", {"diffusion.prediction_type": "v_prediction"}),
    "c2gr-vf": ("c2gr", {"diffusion.prediction_type": "v_prediction", "diffusion.replay_filter": True}),
    "c2gr-vr": ("c2gr", {"diffusion.prediction_type": "v_prediction", "diffusion.replay_masks": "resampled"}),
    "c2gr-vd": ("c2gr", {"diffusion.prediction_type": "v_prediction", "training.generator_distill": True}),
    "c2gr-vs": ("c2gr", {"diffusion.prediction_type": "v_prediction", "diffusion.replay_masks": "segmentor"}),
    "c2gr-vsp": ("c2gr-norups", {"diffusion.prediction_type": "v_prediction", "diffusion.replay_masks": "segmentor"}),
    "gr-v": ("gr", {"diffusion.prediction_type": "v_prediction"}),
}
"""former name -> (method, {dotted setting: value})."""


def _yaml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def variant_overrides(name: str) -> list[str]:
    """The former variant's settings as `--set` overrides (KEY=VALUE), in the mapping's order."""
    _, settings = FORMER_VARIANTS[name]
    return [f"{key}={_yaml_value(value)}" for key, value in settings.items()]


def replacement_text(name: str) -> str:
    """`method: M` plus the `--set` lines that reproduce the former variant `name`."""
    method, _ = FORMER_VARIANTS[name]
    sets = " ".join(f"--set {o}" for o in variant_overrides(name))
    return f"method: {method} with {sets} (on the command line: --method {method} {sets})"


def former_variant_message(name: str) -> str:
    """Why `name` is refused as a method, and its exact replacement."""
    return (f"method {name!r} is no longer a method: it is {replacement_text(name)}; "
            "see docs/methods.md")


def unknown_method_message(name: str) -> str:
    """The error for a method name that is neither a method nor a former variant, with a "did you mean"."""
    from .methods import METHOD_SPECS

    if name in FORMER_VARIANTS:
        return former_variant_message(name)
    hint = difflib.get_close_matches(str(name), list(METHOD_SPECS), n=1)
    return (f"unknown method {name!r}" + (f" (did you mean {hint[0]!r}?)" if hint else "")
            + f"; methods: {', '.join(METHOD_SPECS)}")


def upgrade_former_variant(raw: dict[str, Any]) -> dict[str, Any]:
    """A raw scenario mapping whose `method` names a former variant, rewritten as its method and settings (a copy);
    any other mapping unchanged. For scenarios stored with runs made under the former names."""
    name = raw.get("method")
    if not isinstance(name, str) or name not in FORMER_VARIANTS:
        return raw
    method, settings = FORMER_VARIANTS[name]
    out = copy.deepcopy(raw)
    out["method"] = method
    for key, value in settings.items():
        section, _, field = key.partition(".")
        node = out.get(section)
        if not isinstance(node, dict):
            node = out[section] = {}
        if key == "diffusion.replay_masks" and value == "segmentor" and node.get(field) == "gated":
            continue  # segmentor-labelled variants gated their masks when the scenario asked for it
        node[field] = value
    return out
