"""Published dataset layouts: nnU-Net v2 raw, Medical Segmentation Decathlon, one folder per case.

Each lister turns a layout into `Case`s (image file(s) + label file) and a `LabelPlan` (how label values become the
task's classes); `read_case` decodes one case into 2D slices the same way for every layout.
"""

from .case import Case, LabelPlan, read_case
from .case_folders import case_folder_cases
from .msd import msd_cases
from .nnunet import nnunet_cases

__all__ = ["Case", "LabelPlan", "case_folder_cases", "msd_cases", "nnunet_cases", "read_case"]
