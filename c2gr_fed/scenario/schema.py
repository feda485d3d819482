"""Pydantic schema of a scenario YAML: the whole task stream, the models and how to train them.

Besides the error types it imports only the method table (c2gr_fed.learning.methods, which imports no model), so
method names are declared once. Every model refuses unknown keys, so a typo in a scenario is an error that names
the field path instead of a silently ignored setting.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..learning.methods import METHOD_SPECS, NO_GENERATOR_METHODS

METHODS: tuple[str, ...] = tuple(METHOD_SPECS)
"""Every learning method the simulator knows (the paper's table). `joint` breaks data locality and is a reference
bound only. The settings that once made method variants are listed in c2gr_fed.learning.former_variants."""

PHANTOM_GENERATORS = (
    "fundus",
    "cardiac_mr",
    "brain_mr",
    "abdominal_ct",
    "histology",
    "breast_us",
    "chest_xray",
    "endoscopy",
    "dermoscopy",
    "retinal_vessels",
    "oct_layers",
    "cells",
    "thyroid_us",
    "prostate_mr",
)
"""Procedural phantom departments; each lives in c2gr_fed.data.phantoms and declares its variants."""

SAMPLERS = ("ddpm", "ddim", "dpmsolver++")
"""Reverse-process samplers; c2gr_fed.diffusion.samplers implements exactly these (it refuses to import otherwise)."""
PREDICTION_TYPES = ("epsilon", "v_prediction", "sample")
TEXT_ENCODERS = ("minilm", "clip", "open_clip")


class StrictModel(BaseModel):
    """Base for every scenario section: unknown keys are refused, values are validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)


# ----------------------------------------------------------------------------------------------- data sources


class PhantomSource(StrictModel):
    """A procedural phantom department: seeded, vectorised, nothing to download."""

    kind: Literal["phantom"] = "phantom"
    generator: Literal[PHANTOM_GENERATORS]  # type: ignore[valid-type]
    variant: str = Field("default", description="appearance variant (site, vendor, sequence, organ)")
    n_train: int = Field(64, ge=1, le=100_000)
    n_val: int = Field(8, ge=0, le=100_000)
    n_test: int = Field(32, ge=1, le=100_000)


class SplitRule(StrictModel):
    """How to split a real data set. An official split by file-name pattern wins; else seeded 60/15/25."""

    train_pattern: str | None = Field(None, description="regex on the file stem marking official training files")
    test_pattern: str | None = Field(None, description="regex on the file stem marking official test files")
    patient_pattern: str | None = Field(
        None, description="regex whose first group is the patient id; splits keep a patient in one split"
    )
    fractions: tuple[float, float, float] = (0.60, 0.15, 0.25)
    val_from_train: float = Field(0.15, ge=0.0, lt=1.0, description="validation share taken from an official train split")
    unit: Literal["case", "slice_block"] = Field(
        "case",
        description="case: every case (or patient) goes whole to one split; slice_block: the slices of every volume "
        "are cut into contiguous train / val / test blocks by `fractions` (a data set of a single volume)",
    )
    block_gap: int = Field(0, ge=0, le=1000, description="slice_block: slices dropped at each block border")

    @field_validator("fractions")
    @classmethod
    def _sum_to_one(cls, v: tuple[float, float, float]) -> tuple[float, float, float]:
        if any(f < 0 for f in v) or abs(sum(v) - 1.0) > 1e-6:
            raise ValueError(f"train/val/test fractions must be >= 0 and sum to 1, got {list(v)}")
        return v

    @model_validator(mode="after")
    def _blocks_need_no_patterns(self) -> "SplitRule":
        if self.unit == "slice_block" and (self.train_pattern or self.test_pattern or self.patient_pattern):
            raise ValueError("split.unit slice_block cuts slices by `fractions`; drop train_pattern, test_pattern "
                             "and patient_pattern (they choose whole cases)")
        return self


class MaskEncoding(StrictModel):
    """How mask pixel values map to class indices (0 = background, k = k-th class of the task)."""

    channel: int | None = Field(0, ge=0, description="mask channel to read when the mask file has several")
    value_map: dict[int, int] | None = Field(
        None, description="pixel value -> class index, e.g. {255: 0, 128: 1, 0: 2}; other values are an error"
    )
    threshold: float | None = Field(None, description="binarise: value > threshold is class 1 (lossy masks)")
    invert: bool = Field(False, description="with threshold: value <= threshold is class 1 instead")
    nearest_tolerance: int = Field(
        0, ge=0, le=64, description="with value_map: accept values within this distance of a key (lossy masks)"
    )
    default: int | None = Field(
        None, ge=0, description="with value_map: the class of every value not listed (e.g. 0 for the other organs "
        "of a many-label map); None: an unlisted value is an error"
    )

    @model_validator(mode="after")
    def _one_rule(self) -> "MaskEncoding":
        if self.value_map is not None and self.threshold is not None:
            raise ValueError("give either value_map or threshold, not both")
        if self.invert and self.threshold is None:
            raise ValueError("invert needs a threshold")
        if self.default is not None and self.value_map is None:
            raise ValueError("default needs a value_map (it is the class of the values the map does not list)")
        return self


class Folder2DSource(StrictModel):
    """2D image and mask folders (PNG, JPEG, BMP, TIFF, GIF), paired by file stem."""

    kind: Literal["folder2d"] = "folder2d"
    root: str = Field(..., description="folder, relative to the data root unless absolute")
    images: str = "images"
    masks: str = "masks"
    image_glob: str = "*"
    mask_glob: str = Field("*", description="mask files to read, e.g. '*_anno.bmp' when masks share the image folder")
    subsets: list[str] | None = Field(
        None, min_length=1,
        description="subfolders of root that each hold the images/masks folders (e.g. ['train/ROIs', 'test/ROIs'] "
        "or BUSI's ['benign', 'malignant']); pair keys become 'subset/key', so split patterns can name the subset",
    )
    pair_key: str | None = Field(
        None,
        description="regular expression searched in every image and mask file stem; its first group (or the whole "
        "match) pairs an image with its mask when their names differ, e.g. DRIVE's 21_training.tif and "
        r"21_manual1.gif with '^(\d+)_', ISIC's ISIC_0000000.jpg and ISIC_0000000_segmentation.png with "
        r"'^(ISIC_\d+)'. None: pair by identical stems",
    )
    mask: MaskEncoding = Field(default_factory=MaskEncoding)
    image_channels: Literal["rgb", "grey", "as_is"] = "as_is"
    channels: list[int] | None = Field(
        None, min_length=1, max_length=3, description="image channels to keep, in order (1 or 3; multi-channel TIFF)"
    )
    intensity: Literal["auto", "uint8", "minmax", "percentile"] = Field(
        "auto", description="scaling to [-1, 1]: auto = fixed for 8-bit images, per-image percentiles otherwise"
    )
    percentiles: tuple[float, float] = Field((0.5, 99.5), description="low/high percentiles for intensity=percentile")
    split: SplitRule = Field(default_factory=SplitRule)
    limit: int | None = Field(None, ge=1, description="use at most this many pairs (sorted by stem)")


    @field_validator("pair_key")
    @classmethod
    def _pair_key_compiles(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                re.compile(v)
            except re.error as e:
                raise ValueError(f"pair_key {v!r} is not a regular expression: {e}") from None
        return v


class Nifti3DSource(StrictModel):
    """3D NIfTI volumes with label volumes of the same shape, sliced along one axis."""

    kind: Literal["nifti3d"] = "nifti3d"
    root: str
    images: str = "images"
    labels: str = "labels"
    axis: int = Field(2, ge=0, le=2)
    mask: MaskEncoding = Field(default_factory=MaskEncoding)
    skip_empty_slices: bool = Field(False, description="drop slices whose label is all background")
    window: tuple[float, float] | None = Field(None, description="intensity window (low, high) before scaling")
    intensity: Literal["auto", "minmax", "percentile"] = Field(
        "auto", description="scaling to [-1, 1] per volume: auto = the window if given, else percentiles"
    )
    percentiles: tuple[float, float] = Field((0.5, 99.5), description="low/high percentiles for intensity=percentile")
    split: SplitRule = Field(default_factory=SplitRule)


class _LayoutSource(StrictModel):
    """What every published layout shares: one case = image file(s) + one label file, 2D rasters or 3D NIfTI
    (3D volumes are cut into 2D slices along `axis`)."""

    root: str = Field(..., description="the dataset folder, relative to the data root unless absolute")
    axis: int = Field(2, ge=0, le=2, description="3D only: the slicing axis of the stored volume")
    skip_empty_slices: bool = Field(False, description="3D only: drop slices whose label is all background")
    window: tuple[float, float] | None = Field(None, description="intensity window (low, high) before scaling")
    intensity: Literal["auto", "uint8", "minmax", "percentile"] = Field(
        "auto", description="scaling to [-1, 1] per image or volume and channel: auto = the window if given, fixed "
        "for 8-bit data, else percentiles"
    )
    percentiles: tuple[float, float] = Field((0.5, 99.5), description="low/high percentiles for intensity=percentile")
    image_channels: Literal["rgb", "grey", "as_is"] = "as_is"
    split: SplitRule = Field(default_factory=SplitRule)
    limit: int | None = Field(None, ge=1, description="use at most this many cases (sorted by case id)")


class _DeclaredLabels(_LayoutSource):
    """A layout with a dataset.json that names its channels and labels."""

    channels: list[Union[int, str]] | None = Field(
        None, min_length=1, max_length=3,
        description="input channels to use, by name (dataset.json channel_names / modality) or index; 1 or 3. "
        "None: the only channel",
    )
    labels: dict[str, Union[str, list[str]]] | None = Field(
        None, description="task class -> dataset.json label name(s) it selects (several names: their union). "
        "None: every task class is a dataset.json label name. Labels not selected become background",
    )


class NnUNetSource(_DeclaredLabels):
    """An nnU-Net v2 raw dataset: dataset.json (channel_names, labels, file_ending), imagesTr/CASE_XXXX<ending>
    (one file per channel), labelsTr/CASE<ending>. 2D (PNG, TIFF, ...) or 3D (NIfTI)."""

    kind: Literal["nnunet"] = "nnunet"


class MSDSource(_DeclaredLabels):
    """A Medical Segmentation Decathlon task: dataset.json (modality, labels as value -> name, training list of
    image/label paths); multi-modal images are 4D with the channels on the last axis."""

    kind: Literal["msd"] = "msd"


class CaseTable(StrictModel):
    """Choose the case folders from a table the dataset ships (e.g. M&Ms' vendor and centre CSV)."""

    file: str = Field(..., description="CSV file, relative to the dataset root")
    id_column: str = Field(..., description="column holding the case folder name")
    where: dict[str, str] = Field(default_factory=dict, description="keep rows whose columns equal these values")


class CaseFoldersSource(_LayoutSource):
    """One folder per case holding its files by name: BraTS `{case}_flair.nii.gz` / `{case}_seg.nii.gz`, KiTS
    `imaging.nii.gz` / `segmentation.nii.gz`, M&Ms `{case}_sa.nii.gz` / `{case}_sa_gt.nii.gz` (4D cine)."""

    kind: Literal["case_folders"] = "case_folders"
    cases: Union[str, list[str]] = Field(
        "*", description="glob(s) of the case folders under root, e.g. 'Training/Labeled/*'"
    )
    images: list[str] = Field(
        ..., min_length=1, max_length=3,
        description="image file name(s) in a case folder, one per channel (1 or 3); {case} is the folder name",
    )
    label: str = Field(..., description="label file name in a case folder; {case} is the folder name")
    mask: MaskEncoding = Field(default_factory=MaskEncoding)
    frames: Literal["all", "labelled"] = Field(
        "all", description="4D image and label (X, Y, Z, T): all time frames, or only those whose label has "
        "foreground (M&Ms: the ED and ES frames)",
    )
    case_table: CaseTable | None = None


DataSource = Annotated[
    Union[PhantomSource, Folder2DSource, Nifti3DSource, NnUNetSource, MSDSource, CaseFoldersSource],
    Field(discriminator="kind"),
]
REAL_SOURCES = (Folder2DSource, Nifti3DSource, NnUNetSource, MSDSource, CaseFoldersSource)
"""Every data source read from files (all but the phantom)."""
LAYOUT_SOURCES = (NnUNetSource, MSDSource, CaseFoldersSource)
"""Sources whose cases are listed by a published layout (see c2gr_fed.data.layouts)."""


# ---------------------------------------------------------------------------------------------- tasks, depts


class TaskSpec(StrictModel):
    """One segmentation task: what it is (the prompt attributes), its classes, and where its data is."""

    name: str = Field(..., min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.&+-]*$")
    modality: str = Field(..., min_length=1, max_length=80)
    site: str | None = Field(None, max_length=80, description="site, vendor, device or sequence")
    region: str = Field(..., min_length=1, max_length=80)
    objective: str = Field(..., min_length=1, max_length=120)
    classes: list[str] = Field(..., min_length=1, description="ordered foreground class names")
    data: DataSource

    @field_validator("classes")
    @classmethod
    def _unique_classes(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError(f"class names repeat: {v}")
        return v


class DepartmentSpec(StrictModel):
    """A hospital department: one federated node holding only its own tasks' data."""

    name: str = Field(..., min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9-]*$")
    description: str = ""
    tasks: list[TaskSpec] = Field(..., min_length=1)


# ------------------------------------------------------------------------------------------ models, training


_WEIGHT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".ckpt")


class TextEncoderConfig(StrictModel):
    name: Literal[TEXT_ENCODERS] = "minilm"  # type: ignore[valid-type]
    path: str | None = Field(None, description="local transformers CLIP weights directory (clip only)")
    model: str | None = Field(None, description="open_clip architecture name, e.g. ViT-B-32 (open_clip only)")
    pretrained: str | None = Field(
        None, description="path of a local open_clip checkpoint file (open_clip only; never a download tag)"
    )

    @model_validator(mode="after")
    def _fields_of_the_encoder(self) -> "TextEncoderConfig":
        if self.name != "open_clip":
            given = [f for f in ("model", "pretrained") if getattr(self, f) is not None]
            if given:
                raise ValueError(f"text_encoder.{given[0]} is for name: open_clip only, not {self.name!r}")
            return self
        if self.path is not None:
            raise ValueError("text_encoder.path is for name: clip; open_clip takes text_encoder.model and "
                             "text_encoder.pretrained (a local checkpoint file)")
        if not self.model:
            raise ValueError("text_encoder.model is required with name: open_clip (an architecture, e.g. ViT-B-32)")
        if self.model.lower().startswith("hf-hub:"):
            raise ValueError(f"text_encoder.model = {self.model!r} names a Hugging Face Hub download; give an "
                             "architecture bundled with open_clip (e.g. ViT-B-32) and a local pretrained file")
        if not self.pretrained:
            raise ValueError("text_encoder.pretrained is required with name: open_clip: the path of a local "
                             "checkpoint file (weights are never downloaded)")
        if not looks_like_local_path(self.pretrained):
            raise ValueError(
                f"text_encoder.pretrained = {self.pretrained!r} looks like an open_clip download tag, not a local "
                f"file: weights are never downloaded. Download the checkpoint elsewhere and give its path (a path "
                f"with a directory part, or a file ending in {', '.join(_WEIGHT_SUFFIXES)})"
            )
        return self


def looks_like_local_path(value: str) -> bool:
    """True for a string written as a file path (a directory part, ~, or a weights suffix), False for a bare tag."""
    v = value.strip()
    if v.lower().startswith(("hf-hub:", "http:", "https:")):
        return False
    return "/" in v or "\\" in v or v.startswith("~") or v.lower().endswith(_WEIGHT_SUFFIXES)


class UNetConfig(StrictModel):
    """Channel widths per level; cross-attention at the levels listed (0 = full resolution)."""

    channels: list[int] = Field(..., min_length=2)
    attention_levels: list[int] = Field(default_factory=list)
    layers_per_block: int = Field(1, ge=1, le=4)
    heads: int = Field(4, ge=1, le=32)
    groups: int = Field(8, ge=1, le=64, description="GroupNorm groups")
    backbone: Literal["native", "diffusers"] = Field(
        "native",
        description="native: this package's UNet (ResBlocks + cross-attention); diffusers: diffusers' UNet blocks "
        "(UNet2DConditionModel for the denoiser, its second timestep embedding for the mask part)",
    )

    @model_validator(mode="after")
    def _levels_exist(self) -> "UNetConfig":
        bad = [lv for lv in self.attention_levels if not 0 <= lv < len(self.channels)]
        if bad:
            raise ValueError(
                f"attention_levels {bad} do not exist: levels are 0..{len(self.channels) - 1} for channels {self.channels}"
            )
        bad_groups = [c for c in self.channels if c % self.groups]
        if bad_groups:
            raise ValueError(f"channels {bad_groups} are not divisible by groups={self.groups}")
        return self


class PromptConfig(StrictModel):
    """Relation-aware prompt graph (RUPS). Paper: node 512, q 256, cross-attention 768."""

    node_dim: int = Field(128, ge=8)
    q_dim: int = Field(64, ge=8)
    tokens: int = Field(4, ge=1, le=77, description="cross-attention tokens per prompt")
    token_dim: int = Field(128, ge=8, description="cross-attention context dimension")
    leaky_slope: float = Field(0.2, ge=0.0, lt=1.0)
    residual: bool = Field(
        False,
        description="add each task's own node embedding h_i to its relation prompt p_i (a residual connection, as "
        "graph attention networks often use; not in the paper). Without it p_i is an attention-weighted mean over "
        "the pool, and when the attention is flat every task gets nearly the same tokens, so tasks that share "
        "their images cannot be told apart",
    )


class ModelConfig(StrictModel):
    max_classes: int = Field(3, ge=1, le=32, description="K_max: head has K_max + 1 channels")
    segmentor: UNetConfig = Field(
        default_factory=lambda: UNetConfig(channels=[16, 32, 64, 128], attention_levels=[2, 3])
    )
    denoiser: UNetConfig = Field(
        default_factory=lambda: UNetConfig(channels=[32, 64, 128], attention_levels=[1, 2])
    )
    prompt: PromptConfig = Field(default_factory=PromptConfig)


class TrainingConfig(StrictModel):
    epochs: int = Field(10, ge=0, le=10_000)
    max_steps: int | None = Field(None, ge=1, description="cap on optimiser steps per round (None: epochs decide)")
    batch_size: int = Field(32, ge=1, le=4096)
    lr: float = Field(1e-3, gt=0, le=1.0)
    denoiser_lr: float | None = Field(None, gt=0, le=1.0, description="defaults to lr")
    weight_decay: float = Field(0.0, ge=0)
    grad_clip: float | None = Field(1.0, gt=0)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Literal["fp32", "bf16"] = "fp32"
    threads: int | None = Field(None, ge=1, le=256, description="torch CPU threads per department node")
    augment: bool = Field(True, description="flips and 90-degree rotations (exact for masks)")
    ewc_lambda: float = Field(100.0, ge=0, description="ewc only")
    distill_weight: float = Field(1.0, ge=0, description="lwf only")
    compile: bool = Field(False, description="torch.compile the segmentor and denoiser for the round (GPU; slow first steps)")
    channels_last: bool = Field(False, description="NHWC memory format for models and batches (GPU tensor cores)")
    replay_fraction: float | None = Field(
        None, gt=0, lt=1,
        description="share of each batch drawn from replay when there is replay (None: uniform over current + replay)",
    )
    generator_extra_steps: int = Field(
        0, ge=0, le=1_000_000,
        description="optimiser steps per round that train the generator (denoiser + prompt graph, diffusion loss "
        "only) after the joint steps; 0: the paper's purely joint schedule",
    )
    generator_distill_weight: float = Field(
        1.0, ge=0,
        description="weight of the generative-distillation loss (training.generator_distill)",
    )
    generator_distill: bool = Field(
        False,
        description="generative distillation (beyond the paper): the denoiser also learns the received (frozen) "
        "denoiser's outputs on noised replay, with the earlier prompts; methods that train a single generator",
    )


class DiffusionConfig(StrictModel):
    timesteps: int = Field(1000, ge=10, le=10_000)
    beta_schedule: Literal["linear", "scaled_linear", "squaredcos_cap_v2"] = "linear"
    sampler: Literal[SAMPLERS] = "ddim"  # type: ignore[valid-type]
    sampling_steps: int = Field(25, ge=1, le=10_000)
    replay_per_task: int | Literal["train_size"] = Field(
        64, description="replay pairs synthesised per earlier task; 'train_size' = as many as it had (paper)"
    )
    chunk_size: int = Field(64, ge=1, le=4096, description="pairs per sampling batch (bounds memory)")
    replay_oversample: int = Field(
        2, ge=1, le=16, description="candidates sampled per kept replay pair (diffusion.replay_filter)"
    )
    bjd_estimator: Literal["full", "stochastic"] = Field(
        "full", description="full: all three terms per sample; stochastic: one term drawn per sample (unbiased)"
    )
    ema: float | None = Field(None, gt=0, lt=1, description="EMA decay of the denoiser weights used for sampling")
    prediction_type: Literal[PREDICTION_TYPES] = Field(  # type: ignore[valid-type]
        "epsilon",
        description="what the denoiser predicts: epsilon (the paper's), v_prediction (Salimans & Ho 2022) or sample "
        "(x0); the same loss terms, each scored against that target",
    )
    ema_warmup: bool = Field(
        False,
        description="with ema: the decay ramps up as min(ema, (1 + n) / (10 + n)) over the round's n updates, so the "
        "sampling weights follow a warm-started or fresh generator instead of staying near its starting point",
    )
    replay_masks: Literal["generated", "segmentor", "gated", "resampled"] = Field(
        "generated",
        description="masks of the replay pairs of a pair-replay method (c2gr, c2gr-njd, c2gr-norups): generated "
        "jointly with the image (the paper's coupled replay), the received segmentor's prediction on the "
        "generated image (as in GR), gated: the segmentor's prediction where it agrees with the generated mask "
        "(Dice >= diffusion.replay_mask_gate) and the generated mask where it does not, so a segmentor that has "
        "begun to forget a task is corrected by that task's generator instead of relearning its own errors, or "
        "resampled: re-sampled given the clean generated image by BJD's mask-given-image branch (BJD methods); "
        "the generator is trained the same way in every case. GR's image-only replay takes the segmentor's "
        "predictions (gated with gated)",
    )
    replay_filter: bool = Field(
        False,
        description="sample diffusion.replay_oversample candidates per replay pair and keep those whose generated "
        "mask agrees best with the received segmentor's prediction on its image (beyond the paper; pair replay "
        "with generated, resampled or segmentor masks; with segmentor masks it keeps the generated images in which "
        "the segmentor finds the structure the generator drew)",
    )
    replay_current_images: Literal["none", "same_modality"] = Field(
        "none",
        description="same_modality: besides the generated replay, the department's own training images are labelled "
        "by the received segmentor under the prompt of every earlier task of the same modality (the same text, "
        "case-insensitive) and trained on as that task's replay. Where tasks share their images and differ only in "
        "what is segmented (one abdominal CT, three organs), real images then carry every prompt's labels, so the "
        "segmentor must tell the tasks apart by the prompt instead of by whether an image looks generated",
    )
    replay_current_per_task: int = Field(
        24, ge=1, le=100_000, description="replay_current_images: own images relabelled per earlier same-modality task",
    )
    replay_mask_gate: float = Field(
        0.5, ge=0.0, le=1.0,
        description="replay_masks: gated only: the least Dice between the segmentor's prediction and the generated "
        "mask for the prediction to be the replay mask",
    )
    generators: Literal["single", "bank"] = Field(
        "single",
        description="single: one prompt-conditioned generator for every task, retrained each round on current data "
        "+ its own replay (the paper); bank: each department trains its own task's generator on its own real data, "
        "which is then frozen with its prompt tokens and travels with the models; replay of a task always comes "
        "from its own generator",
    )
    min_snr_gamma: float | None = Field(
        None, gt=0, le=1000,
        description="min-SNR-gamma loss weighting (Hang et al. 2023, beyond the paper): each BJD/NJD term is weighted "
        "by min(SNR(t), gamma) relative to an x0 loss, which down-weights the nearly clean timesteps; unset: "
        "unweighted (the paper)",
    )
    mask_loss_weight: float = Field(
        1.0, gt=0, le=100,
        description="weight of the mask channels' squared error against the image channels' in the joint and "
        "mask-given-image terms (1: the paper's plain mean over channels)",
    )
    bank_warm_start: Literal["nearest", "previous", "none"] = Field(
        "nearest",
        description="bank only: a new task's generator starts from a copy of the banked generator whose task prompt "
        "text is nearest (nearest), the last banked one (previous), or a fresh initialisation (none)",
    )


class FederationConfig(StrictModel):
    cpus_per_department: float = Field(1.0, gt=0)
    gpus_per_department: float = Field(0.0, ge=0)
    round_timeout_s: float = Field(3600.0, gt=0)
    evaluate_timeout_s: float = Field(600.0, gt=0)
    retries: int = Field(1, ge=0, le=10)
    retry_backoff_s: float = Field(2.0, ge=0)
    on_bad_reply: Literal["stop", "exclude"] = "stop"


class PrivacyConfig(StrictModel):
    """Optional privacy audits after the last round, run by each department on its own data (aggregates only)."""

    memorisation_audit: bool = Field(
        False, description="after the last round, each department audits the generator and segmentor on its tasks"
    )
    samples: int = Field(32, ge=4, le=10_000, description="synthetic pairs per task for the memorisation audit")
    sampler: Literal[SAMPLERS] = Field(  # type: ignore[valid-type]
        "ddpm", description="sampler of the memorisation audit (stochastic DDPM exposes copies that DDIM-10 misses)"
    )
    sampling_steps: int = Field(50, ge=1, le=10_000, description="reverse steps of the memorisation audit's sampler")


# --------------------------------------------------------------------------------------------------- scenario


class Scenario(StrictModel):
    """A whole task stream. `order` lists task names in arrival order (defaults to declaration order)."""

    name: str = Field(..., min_length=1, max_length=80)
    description: str = ""
    seed: int = Field(0, ge=0)
    image_size: int = Field(32, ge=8, le=1024)
    method: Literal[METHODS] = "c2gr"  # type: ignore[valid-type]
    """one of the paper's methods (METHOD_SPECS); a former variant's name is refused with its replacement by
    scenario validation (c2gr_fed.scenario.loading), before this field is read."""
    text_encoder: TextEncoderConfig = Field(default_factory=TextEncoderConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    diffusion: DiffusionConfig = Field(default_factory=DiffusionConfig)
    federation: FederationConfig = Field(default_factory=FederationConfig)
    privacy: PrivacyConfig = Field(default_factory=PrivacyConfig)
    departments: list[DepartmentSpec] = Field(..., min_length=1)
    order: list[str] | None = None

    @field_validator("image_size")
    @classmethod
    def _power_of_two_friendly(cls, v: int) -> int:
        if v % 8:
            raise ValueError(f"image_size must be a multiple of 8 (the UNets halve it), got {v}")
        return v

    @model_validator(mode="after")
    def _stream_is_consistent(self) -> "Scenario":
        seen_depts: set[str] = set()
        seen_tasks: dict[str, str] = {}
        for dept in self.departments:
            if dept.name in seen_depts:
                raise ValueError(f"department name {dept.name!r} repeats")
            seen_depts.add(dept.name)
            for task in dept.tasks:
                if task.name in seen_tasks:
                    raise ValueError(
                        f"task name {task.name!r} repeats (departments {seen_tasks[task.name]!r} and {dept.name!r})"
                    )
                seen_tasks[task.name] = dept.name
                if len(task.classes) > self.model.max_classes:
                    raise ValueError(
                        f"task {task.name!r} has {len(task.classes)} classes {task.classes} but "
                        f"model.max_classes is {self.model.max_classes}: raise model.max_classes"
                    )
        if self.order is not None:
            unknown = [t for t in self.order if t not in seen_tasks]
            if unknown:
                raise ValueError(f"order names unknown tasks {unknown}; known tasks: {sorted(seen_tasks)}")
            repeats = sorted({t for t in self.order if self.order.count(t) > 1})
            if repeats:
                raise ValueError(f"order lists tasks more than once: {repeats}")
            missing = [t for t in seen_tasks if t not in self.order]
            if missing:
                raise ValueError(f"order leaves out tasks {missing}: list every task once")
        dc = self.diffusion
        if dc.generators == "bank" and self.method in NO_GENERATOR_METHODS:
            raise ValueError(f"diffusion.generators is 'bank' but method {self.method!r} trains no generator: "
                             "use diffusion.generators: single, or a method that replays (c2gr, gr, ...)")
        spec = METHOD_SPECS[self.method]
        tc = self.training
        if tc.generator_distill and not spec.trains_generator:
            raise ValueError(f"training.generator_distill is true but method {self.method!r} trains no generator: "
                             "drop generator_distill or use a method that replays (c2gr, gr, ...)")
        if tc.generator_distill and dc.generators == "bank":
            raise ValueError("training.generator_distill is true but diffusion.generators is 'bank': distillation "
                             "learns from the received single generator, which a bank does not have; use "
                             "diffusion.generators: single or drop generator_distill")
        if dc.replay_masks == "resampled" and (spec.replay != "pairs" or spec.objective != "bjd"):
            raise ValueError(f"diffusion.replay_masks is 'resampled' but method {self.method!r} "
                             + ("has no pair replay" if spec.replay != "pairs" else "trains the NJD objective")
                             + ": re-sampling uses BJD's mask-given-image branch, which only a BJD method with pair "
                             "replay trains (c2gr, c2gr-norups)")
        if dc.replay_filter and (spec.replay != "pairs" or dc.replay_masks == "gated"):
            why = (f"method {self.method!r} has no pair replay" if spec.replay != "pairs"
                   else f"diffusion.replay_masks is {dc.replay_masks!r}")
            raise ValueError(f"diffusion.replay_filter is true but {why}: filtering keeps the pairs whose generated "
                             "mask agrees best with the segmentor's label of the image, so it needs pair replay with "
                             "replay_masks: generated, resampled or segmentor")
        if dc.replay_current_images != "none" and self.method in NO_GENERATOR_METHODS:
            raise ValueError(f"diffusion.replay_current_images is {dc.replay_current_images!r} but method "
                             f"{self.method!r} does not replay: use replay_current_images: none")
        if dc.ema_warmup and dc.ema is None:
            raise ValueError("diffusion.ema_warmup is true but diffusion.ema is not set: give diffusion.ema "
                             "(e.g. 0.995) or drop ema_warmup")
        if self.method not in NO_GENERATOR_METHODS and tc.epochs == 0 and tc.generator_extra_steps == 0:
            raise ValueError(f"method {self.method!r} replays from a generator, but training.epochs is 0 and "
                             "training.generator_extra_steps is 0: the generator would never train; give either "
                             "a positive value")
        return self

    # ---- convenience views (derived, never stored) ----

    def stream(self) -> list[TaskSpec]:
        """Tasks in arrival order."""
        by_name = {t.name: t for d in self.departments for t in d.tasks}
        names = self.order if self.order is not None else [t.name for d in self.departments for t in d.tasks]
        return [by_name[n] for n in names]

    def department_of(self, task_name: str) -> str:
        for d in self.departments:
            if any(t.name == task_name for t in d.tasks):
                return d.name
        raise KeyError(f"no department holds task {task_name!r}")

    def department(self, name: str) -> DepartmentSpec:
        for d in self.departments:
            if d.name == name:
                return d
        raise KeyError(f"no department named {name!r}; departments: {[d.name for d in self.departments]}")

    def task(self, name: str) -> TaskSpec:
        for d in self.departments:
            for t in d.tasks:
                if t.name == name:
                    return t
        raise KeyError(f"no task named {name!r}")

    def resolve_data_path(self, root: str, data_root: Path | None) -> Path:
        p = Path(root).expanduser()
        if p.is_absolute() or data_root is None:
            return p
        return data_root / p
