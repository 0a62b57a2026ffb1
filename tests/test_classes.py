import numpy as np

from vaiseg.classes import IGNORE, PALETTE, index_to_rgb, rgb_to_index


def test_round_trip_and_unknown_colours():
    labels = np.array([[0, 1, 2], [3, 4, 5]], dtype=np.uint8)
    rgb = index_to_rgb(labels)
    back, unknown = rgb_to_index(rgb)
    assert (back == labels).all() and unknown == {}
    rgb[0, 0] = (12, 34, 56)
    back, unknown = rgb_to_index(rgb)
    assert unknown == {(12, 34, 56): 1}
    assert back[0, 0] == IGNORE


def test_black_boundary_only_allowed_when_asked():
    rgb = np.zeros((2, 2, 3), dtype=np.uint8)
    rgb[0, 0] = PALETTE[4]
    _, unknown = rgb_to_index(rgb)
    assert unknown == {(0, 0, 0): 3}
    labels, unknown = rgb_to_index(rgb, allow_boundary=True)
    assert unknown == {} and labels[0, 0] == 4 and labels[1, 1] == IGNORE
