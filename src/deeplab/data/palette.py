"""The PASCAL VOC colour map, used for palette PNG labels."""

import numpy as np


def voc_palette(num_colors: int = 256) -> np.ndarray:
    """VOC's bit-interleaved colour map: (num_colors, 3) uint8. Index 255 (void) is (224, 224, 192)."""
    palette = np.zeros((num_colors, 3), dtype=np.uint8)
    for index in range(num_colors):
        c, r, g, b = index, 0, 0, 0
        for bit in range(8):
            r |= ((c >> 0) & 1) << (7 - bit)
            g |= ((c >> 1) & 1) << (7 - bit)
            b |= ((c >> 2) & 1) << (7 - bit)
            c >>= 3
        palette[index] = (r, g, b)
    return palette
