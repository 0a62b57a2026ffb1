"""The ISPRS Vaihingen archive layout: archive names, member names, known md5s (§3).

Both data sources share this table: the real archives are read with it and the
synthetic generator writes archives that follow it exactly, so one ingestion code path
serves both.

Members are located by basename pattern anywhere inside an archive (the real zips
differ in whether they carry a top-level folder):

- ``top``: ``ISPRS_semantic_labeling_Vaihingen.zip`` with
  ``top/top_mosaic_09cm_area{N}.tif`` (IR-R-G, uint8, 3 bands),
  ``dsm/dsm_09cm_matching_area{N}.tif`` (float32 metres, 1 band) and
  ``gts_for_participants/top_mosaic_09cm_area{N}.tif`` (colour GT, 16 labelled areas).
- ``gt``: ``ISPRS_semantic_labeling_Vaihingen_ground_truth_COMPLETE.zip`` with
  ``top_mosaic_09cm_area{N}.tif`` (colour GT of all 33 areas).
- ``gt_eroded``: ``ISPRS_semantic_labeling_Vaihingen_ground_truth_eroded_COMPLETE.zip``
  with ``top_mosaic_09cm_area{N}_noBoundary.tif`` (boundaries eroded by a disk of
  radius 3, black).
- ``ndsm`` (optional): Gerke's normalised DSMs, ``dsm_09cm_matching_area{N}_normalized.{jpg,tif}``.
"""

from __future__ import annotations

import re

ARCHIVES = {
    "top": "ISPRS_semantic_labeling_Vaihingen.zip",
    "gt": "ISPRS_semantic_labeling_Vaihingen_ground_truth_COMPLETE.zip",
    "gt_eroded": "ISPRS_semantic_labeling_Vaihingen_ground_truth_eroded_COMPLETE.zip",
    "ndsm": "ISPRS_semantic_labeling_Vaihingen_nDSM_Gerke.zip",
}
#: md5s of the real archives as published (others are configurable)
KNOWN_MD5 = {
    "top": "462b8dca7b6fa9eaf729840f0cdfc7f3",
    "gt": "4802dd6326e2727a352fb735be450277",
}
REQUIRED_ARCHIVES = ("top", "gt", "gt_eroded")

# member paths the synthetic generator writes (and the real archives contain)
TOP_MEMBER = "top/top_mosaic_09cm_area{area}.tif"
DSM_MEMBER = "dsm/dsm_09cm_matching_area{area}.tif"
GT_PARTICIPANTS_MEMBER = "gts_for_participants/top_mosaic_09cm_area{area}.tif"
GT_MEMBER = "top_mosaic_09cm_area{area}.tif"
GT_ERODED_MEMBER = "top_mosaic_09cm_area{area}_noBoundary.tif"
NDSM_MEMBER = "dsm_09cm_matching_area{area}_normalized.tif"

# basename patterns used to find members (group 1 = area number)
PATTERNS = {
    ("top", "top"): re.compile(r"(?:^|/)top/top_mosaic_09cm_area(\d+)\.tif$"),
    ("top", "dsm"): re.compile(r"(?:^|/)dsm_09cm_matching_area(\d+)\.tif$"),
    ("top", "gt"): re.compile(r"(?:^|/)gts_for_participants/top_mosaic_09cm_area(\d+)\.tif$"),
    ("gt", "gt"): re.compile(r"(?:^|/)top_mosaic_09cm_area(\d+)\.tif$"),
    ("gt_eroded", "gt_eroded"): re.compile(r"(?:^|/)top_mosaic_09cm_area(\d+)_noBoundary\.tif$"),
    ("ndsm", "ndsm"): re.compile(r"(?:^|/)dsm_09cm_matching_area(\d+)_normalized\.(?:tif|jpg)$"),
}
