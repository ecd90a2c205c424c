"""MakeHuman's macro modifiers (gender, age, ethnic mix, muscle, weight) as target-file mixes.

MakeHuman does not show its raw base mesh: its default human applies the macro targets of
`targets/macrodetails` for gender 0.5, age 0.5 (25 years), an equal African/Asian/Caucasian mix,
average muscle and weight. The weights follow MakeHuman's `macro.json` interpolation:
- gender g: female 1 − g, male g; age a in three segments: baby→child over [0, 0.1875],
  child→young over [0.1875, 0.5], young→old over [0.5, 1]; muscle and weight: min→average over
  [0, 0.5], average→max over [0.5, 1] (the "average" targets are empty files);
- "<race>-<gender>-<age>" gets race share × gender weight × age weight, and
  "universal-<gender>-<age>-<muscle>-<weight>" gets gender × age × muscle × weight.
(Height and proportions move the body, not the head's shape, and are left out.)

`DEFAULT` is that default human: the head model's template is the base mesh plus `DEFAULT`'s mix.
`macro_targets()` turns gender, age and each ethnic share into one shape weight around the default
(e.g. "macro-gender-female|male": −1 = female, +1 = male), so the photo fit can move along the
directions MakeHuman users use for identity. Muscle and weight are left out: measured on the
landmarks, they do not move the face (0.0 mm), only the neck and shoulders.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from .targets import ShapeTarget

RACES = ("african", "asian", "caucasian")
AGE_SEGMENTS = ((0.0, 0.1875, "baby", "child"), (0.1875, 0.5, "child", "young"), (0.5, 1.0, "young", "old"))
LEVELS = ((0.0, 0.5, "min", "average"), (0.5, 1.0, "average", "max"))
FAMILY = "macrodetails"


@dataclass(frozen=True)
class Macro:
    gender: float = 0.5  # 0 female, 1 male
    age: float = 0.5  # 0 baby, 0.1875 child, 0.5 young adult (25), 1 old (90)
    african: float = 1 / 3
    asian: float = 1 / 3
    caucasian: float = 1 / 3
    muscle: float = 0.5
    weight: float = 0.5

    def mix(self) -> dict[str, float]:
        """target file (under targets/) → weight."""
        genders = {"female": 1.0 - self.gender, "male": self.gender}
        ages = _segments(self.age, AGE_SEGMENTS)
        muscles = {f"{k}muscle": v for k, v in _segments(self.muscle, LEVELS).items()}
        weights = {f"{k}weight": v for k, v in _segments(self.weight, LEVELS).items()}
        races = {"african": self.african, "asian": self.asian, "caucasian": self.caucasian}
        total = sum(races.values())
        mix: dict[str, float] = {}
        for gender, g in genders.items():
            for age, a in ages.items():
                for race, r in races.items():
                    _add(mix, f"{FAMILY}/{race}-{gender}-{age}", r / total * g * a)
                for muscle, m in muscles.items():
                    for weight, w in weights.items():
                        _add(mix, f"{FAMILY}/universal-{gender}-{age}-{muscle}-{weight}", g * a * m * w)
        return mix


DEFAULT = Macro()


def macro_targets() -> list[ShapeTarget]:
    """One signed shape weight per macro direction, relative to `DEFAULT` (the head's mean motion removed)."""
    only = lambda race: replace(DEFAULT, **{name: float(name == race) for name in RACES})  # noqa: E731
    pairs = (
        ("macro-gender-female|male", replace(DEFAULT, gender=1.0), replace(DEFAULT, gender=0.0)),
        ("macro-age-child|old", replace(DEFAULT, age=1.0), replace(DEFAULT, age=0.1875)),
    )
    targets = [ShapeTarget(name, FAMILY, _difference(up), _difference(down), recentre=True) for name, up, down in pairs]
    targets += [ShapeTarget(f"macro-{race}", FAMILY, _difference(only(race)), None, recentre=True) for race in RACES]
    return targets


def _difference(macro: Macro) -> tuple[tuple[str, float], ...]:
    mix = macro.mix()
    for name, weight in DEFAULT.mix().items():
        _add(mix, name, -weight)
    return tuple((name, weight) for name, weight in sorted(mix.items()) if abs(weight) > 1e-12)


def _segments(value: float, segments) -> dict[str, float]:
    for low, high, low_name, high_name in segments:
        if value <= high or high == segments[-1][1]:
            t = min(max((value - low) / (high - low), 0.0), 1.0)
            return {low_name: 1.0 - t, high_name: t}
    raise ValueError(f"value {value} outside the macro range.")


def _add(mix: dict[str, float], name: str, weight: float) -> None:
    if weight:
        mix[name] = mix.get(name, 0.0) + weight
