"""Scenario schema and the only YAML reader."""

from .loading import (
    apply_overrides,
    dump_scenario,
    load_scenario,
    parse_override,
    scenario_differences,
    validate_scenario,
)
from .schema import (
    METHODS,
    PHANTOM_GENERATORS,
    DataSource,
    DepartmentSpec,
    DiffusionConfig,
    FederationConfig,
    CaseFoldersSource,
    Folder2DSource,
    MSDSource,
    NnUNetSource,
    MaskEncoding,
    ModelConfig,
    Nifti3DSource,
    PhantomSource,
    PromptConfig,
    Scenario,
    SplitRule,
    TaskSpec,
    TextEncoderConfig,
    TrainingConfig,
    UNetConfig,
)

__all__ = [
    "METHODS", "PHANTOM_GENERATORS", "DataSource", "DepartmentSpec", "DiffusionConfig", "FederationConfig",
    "CaseFoldersSource", "Folder2DSource", "MSDSource", "NnUNetSource", "MaskEncoding", "ModelConfig", "Nifti3DSource", "PhantomSource", "PromptConfig", "Scenario",
    "SplitRule", "TaskSpec", "TextEncoderConfig", "TrainingConfig", "UNetConfig", "apply_overrides",
    "dump_scenario", "load_scenario", "parse_override", "scenario_differences", "validate_scenario",
]
