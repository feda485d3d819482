"""The resolved scenario as it travels to departments: its canonical JSON text in every request's config record.

A department node needs no copy of the scenario file (and no filesystem shared with the coordinator): it rebuilds
the scenario from the text, after checking that the text's SHA-256 is the `scenario_sha` beside it. The text is
configuration (task names, class lists, model sizes, the data paths a department reads on its own node), declared in
the wire schema (privacy/schema.py, config key `scenario`) and logged, like every config value, as length and hash.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache

from ..errors import FederationError
from ..scenario import Scenario

SCENARIO_KEY = "scenario"
"""Config key of a request's record that holds the scenario text."""


def scenario_text(scenario: Scenario) -> str:
    """The canonical JSON text of a resolved scenario; its SHA-256 is `settings.scenario_sha(scenario)`."""
    return json.dumps(scenario.model_dump(mode="json"), sort_keys=True)


def text_sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@lru_cache(maxsize=8)
def scenario_from_text(text: str, sha: str) -> Scenario:
    """The scenario a request carries; FederationError when the text is not the one `sha` names or does not
    validate. Cached by content, so an actor that serves several departments rebuilds each scenario once."""
    from ..errors import ScenarioError
    from ..scenario import validate_scenario

    if text_sha(text) != sha:
        raise FederationError(f"the scenario text in the request (hash {text_sha(text)[:12]}) is not the scenario "
                              f"{sha[:12]} the request names: the message was altered or truncated")
    try:
        return validate_scenario(json.loads(text))
    except (ValueError, ScenarioError) as exc:
        raise FederationError(f"the scenario text in the request (hash {sha[:12]}) does not validate here: {exc}; "
                              "every node needs the same c2gr-fed version") from None
