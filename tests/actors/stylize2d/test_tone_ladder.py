"""Acceptance: the skin-tone ladder through every offline style, guard on and off.

Guard on: |ΔITA| ≤ 6° for realistic and cartoon, MST within ±1 for anime and sketch, on all 20 inputs.
Guard off: the drift is printed (run with -s to see the table), not asserted.
"""
from __future__ import annotations

import pytest

from actors.request import AvatarRequest
from actors.stylize2d.offline import OfflineStylizer
from actors.stylize2d.tone_guard import guard_tone
from tests.skin_ladder import build_ladder

STYLES = ("realistic", "cartoon", "anime", "sketch")


@pytest.fixture(scope="module")
def ladder_reports(aligned_faces):
    """{(style, input name): ToneReport} with the guard on (raw = what the guard-off run writes)."""
    engine = OfflineStylizer()
    request = AvatarRequest(styles=STYLES)
    reports = {}
    for name, face in build_ladder(aligned_faces):
        for style in STYLES:
            [avatar] = engine.stylize([face], style, request, [request.item_seed("%012x" % len(reports))])
            _, reports[(style, name)] = guard_tone(avatar, face, threshold=request.tone_threshold, enabled=True)
    return reports


def print_table(reports) -> None:
    names = sorted({name for _, name in reports})
    print("\ninput                 ITA_in MST |" + "|".join(f" {s:^22} " for s in STYLES))
    print(" " * 34 + "|" + "|".join(" ΔITA off  ΔITA on MST " for _ in STYLES))
    for name in names:
        first = reports[(STYLES[0], name)]
        cells = []
        for style in STYLES:
            r = reports[(style, name)]
            cells.append(f" {r.ita_raw - r.ita_in:+8.1f} {r.ita_out - r.ita_in:+8.1f} {r.mst_out:3d} ")
        print(f"{name:20s} {first.ita_in:7.1f} {first.mst_in:3d} |" + "|".join(cells))


@pytest.mark.slow
def test_guard_on_keeps_the_tone_on_the_whole_ladder(ladder_reports):
    print_table(ladder_reports)
    failures = []
    for (style, name), r in ladder_reports.items():
        if style in ("realistic", "cartoon") and abs(r.ita_out - r.ita_in) > 6.0:
            failures.append(f"{style} {name}: ΔITA {r.ita_out - r.ita_in:+.1f}")
        if style in ("anime", "sketch") and abs(r.mst_out - r.mst_in) > 1:
            failures.append(f"{style} {name}: MST {r.mst_in} -> {r.mst_out}")
    assert len(ladder_reports) == 80
    assert not failures, failures
