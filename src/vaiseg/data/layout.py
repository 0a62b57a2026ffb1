"""The ISPRS Vaihingen archive layout: archive names, member names, known md5s (§3).

Both data sources share this table: the real archives are read with it and the
synthetic generator writes archives that follow it exactly, so one ingestion code path
serves both.

Members are located by basename pattern anywhere inside an archive (the real zips
differ in whether they carry a top-level folder):

- ``top``: ``ISPRS_semantic_labeling_Vaihingen.zip`` with
  ``top/top_mosaic_09cm_area{N}.tif`` (IR-R-G, uint8, 3 bands),
  ``dsm/dsm_09cm_matching_area{N}.tif`` (float32 metres, 1 band) and
  ``gts_for_participants/top_mosaic_09cm_area{N}.tif`` (full colour GT of the 16
  labelled areas, :data:`vaiseg.config.LABELLED_AREAS`).
- ``gt`` (needed only for areas outside the labelled 16, e.g. the benchmark split's
  test areas): ``ISPRS_semantic_labeling_Vaihingen_ground_truth_COMPLETE.zip`` with
  ``top_mosaic_09cm_area{N}.tif`` (colour GT of all 33 areas).
- ``gt_eroded``: ``ISPRS_semantic_labeling_Vaihingen_ground_truth_eroded_COMPLETE.zip``
  with ``top_mosaic_09cm_area{N}_noBoundary.tif`` (boundaries eroded by a disk of
  radius 3, black).
- ``ndsm`` (optional): Gerke's normalised DSMs, ``dsm_09cm_matching_area{N}_normalized.{jpg,tif}``.

:func:`archives_needed` says which of them an extraction needs.
"""

from __future__ import annotations

import re
from typing import Iterable

from ..config import LABELLED_AREAS
from ..errors import ConfigError

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


def archives_needed(source: str, areas: Iterable[int], configured: dict | None) -> tuple[str, ...]:
    """The archive keys an extraction of ``areas`` needs, in :data:`ARCHIVES` order.

    - ``synthetic``: all four (the generator writes every archive).
    - ``isprs``: ``top`` and ``gt_eroded``; ``gt`` only when an area is outside
      :data:`~vaiseg.config.LABELLED_AREAS` (the full GT of the labelled areas is in
      ``gts_for_participants/`` of the ``top`` archive; the benchmark split's test areas
      or custom ``data.areas`` need the COMPLETE archive); ``ndsm`` when
      ``configured["ndsm"]`` (the ``data.isprs.archives`` mapping) has a path or url.
      A configured ``gt`` archive is not fetched when no area needs it.

    Raises ConfigError for an unknown ``source``.
    """
    if source == "synthetic":
        return tuple(ARCHIVES)
    if source != "isprs":
        raise ConfigError(f"data.source: unknown data source {source!r} (expected 'isprs' or 'synthetic')")
    ndsm = (configured or {}).get("ndsm") or {}
    wanted = {"top", "gt_eroded"}
    if any(int(a) not in LABELLED_AREAS for a in areas):
        wanted.add("gt")
    if ndsm.get("path") or ndsm.get("url"):
        wanted.add("ndsm")
    return tuple(k for k in ARCHIVES if k in wanted)
