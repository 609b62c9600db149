"""The shared image recipe: resolution schedule, seeded crops (Python and the numba copy), centre crop."""

from __future__ import annotations

import math

import numpy as np
import pytest

from training.data.augment import ResolutionSchedule, center_crop, epoch_key, random_resized_crop, splitmix64, uniform


def test_splitmix64_matches_the_published_reference_values():
    # SplitMix64 seeded with 0 (state advances by the golden gamma): the first outputs of the
    # reference generator (Vigna's splitmix64.c), as used to seed xoshiro.
    state, outputs = 0, []
    for _ in range(3):
        outputs.append(splitmix64(state))
        state = (state + 0x9E3779B97F4A7C15) & ((1 << 64) - 1)
    assert outputs == [0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F]


def test_resolution_schedule_follows_ffcv_ramp():
    schedule = ResolutionSchedule(160, 192, 65, 76)  # FFCV's ResNet-50 88-epoch configuration
    # by hand: np.interp between (65, 160) and (76, 192), rounded to a multiple of 32
    expected = {0: 160, 65: 160, 66: 160, 70: 160, 71: 192, 75: 192, 76: 192, 87: 192}
    for epoch, res in expected.items():
        assert schedule(epoch) == res, epoch
    assert ResolutionSchedule(32, 128, 0, 3)(1) == 64 and ResolutionSchedule(32, 128, 0, 3)(2) == 96


def test_uniform_draws_are_uniform_and_independent_of_call_order():
    key = epoch_key(0, 3)
    draws = np.array([uniform(key, i, 0) for i in range(20000)])
    assert draws.min() >= 0 and draws.max() < 1
    assert abs(draws.mean() - 0.5) < 0.01 and abs(draws.var() - 1 / 12) < 0.005
    assert uniform(key, 7, 2) == uniform(key, 7, 2) != uniform(key, 7, 3)
    assert uniform(epoch_key(0, 3), 7, 0) != uniform(epoch_key(0, 4), 7, 0) != uniform(epoch_key(1, 3), 7, 0)


@pytest.mark.parametrize("height,width", [(64, 64), (375, 500), (500, 120), (40, 400)])
def test_random_resized_crop_stays_inside_and_in_the_ranges(height, width):
    key = epoch_key(5, 1)
    flips, areas = [], []
    for index in range(3000):
        top, left, h, w, flip = random_resized_crop(key, index, height, width)
        assert 0 <= top and top + h <= height and 0 <= left and left + w <= width and h > 0 and w > 0
        areas.append(h * w / (height * width))
        flips.append(flip)
    assert 0.45 < np.mean(flips) < 0.55
    if height == width:  # all tries succeed on a square: the area fraction spans (0.08, 1)
        assert 0.07 < min(areas) < 0.12 and max(areas) > 0.95


def test_fallback_is_the_centre_crop_of_the_ratio_range():
    # a 1-pixel-high strip: no try can fit, the fallback keeps the height and clips the width to 4/3
    top, left, h, w, _ = random_resized_crop(epoch_key(0, 0), 0, 1, 400)
    assert (top, h, w) == (0, 1, 1) and left == (400 - 1) // 2


def test_center_crop_is_224_of_256_of_the_shorter_side():
    assert center_crop(256, 256, 224 / 256) == (16, 16, 224, 224)
    assert center_crop(375, 500, 0.875) == ((375 - 328) // 2, (500 - 328) // 2, 328, 328)


def test_numba_crop_equals_the_python_crop():
    from training.data.ffcv_loader import seeded_crop

    for seed, epoch in ((0, 0), (3, 17), (2**40, 99)):
        key = epoch_key(seed, epoch)
        for index in range(0, 5000, 7):
            for height, width in ((64, 64), (333, 500), (500, 90), (1, 400), (400, 1)):
                expected = random_resized_crop(key, index, height, width)
                got = seeded_crop(np.uint64(key), np.uint64(index), np.uint32(height), np.uint32(width))
                assert tuple(int(v) for v in got[:4]) == expected[:4] and bool(got[4]) == expected[4], (seed, epoch, index)


def test_area_fraction_matches_the_log_uniform_aspect_ratio():
    # the aspect ratio w/h of the accepted crops of a large square image is log-uniform on (3/4, 4/3)
    key = epoch_key(1, 1)
    logs = []
    for i in range(4000):
        _, _, h, w, _ = random_resized_crop(key, i, 2000, 2000)
        logs.append(math.log(w / h))
    assert abs(np.mean(logs)) < 0.02 and min(logs) > math.log(3 / 4) - 0.01 and max(logs) < math.log(4 / 3) + 0.01
