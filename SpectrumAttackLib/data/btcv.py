"""The 14 BTCV / Synapse label classes (background included) and their colours.

Ids and order as in the reference's ``dataset_synapse_18_12.json`` (seed-algorithms §9.1). Torch-free.
"""

from __future__ import annotations

__all__ = ["BTCV_CLASSES", "BTCV_COLOURS", "BTCV_TOTALSEGMENTATOR_NAMES", "NUM_BTCV_CLASSES"]

#: Class names by label id: ``BTCV_CLASSES[6] == "liver"``.
BTCV_CLASSES: tuple[str, ...] = (
    "background",
    "spleen",
    "right kidney",
    "left kidney",
    "gallbladder",
    "esophagus",
    "liver",
    "stomach",
    "aorta",
    "inferior vena cava",
    "portal vein and splenic vein",
    "pancreas",
    "right adrenal gland",
    "left adrenal gland",
)

NUM_BTCV_CLASSES = len(BTCV_CLASSES)

#: Display colours (RGB, 0–255) by label id, close to Slicer's GenericAnatomyColors; paired organs differ.
BTCV_COLOURS: tuple[tuple[int, int, int], ...] = (
    (0, 0, 0),
    (157, 108, 162),
    (185, 102, 83),
    (212, 126, 151),
    (139, 150, 98),
    (211, 171, 143),
    (221, 130, 101),
    (216, 132, 105),
    (224, 97, 76),
    (0, 151, 206),
    (0, 112, 165),
    (249, 180, 111),
    (244, 214, 49),
    (255, 170, 0),
)

#: TotalSegmentator (``class_map["total"]``) class name of each BTCV organ, by BTCV id (sample-data §1.6).
BTCV_TOTALSEGMENTATOR_NAMES: dict[int, str] = {
    1: "spleen",
    2: "kidney_right",
    3: "kidney_left",
    4: "gallbladder",
    5: "esophagus",
    6: "liver",
    7: "stomach",
    8: "aorta",
    9: "inferior_vena_cava",
    10: "portal_vein_and_splenic_vein",
    11: "pancreas",
    12: "adrenal_gland_right",
    13: "adrenal_gland_left",
}
