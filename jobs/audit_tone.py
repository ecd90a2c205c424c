"""`python -m jobs.audit_tone`: the skin-tone audit of any folder of avatars, measured from the images.

    python -m jobs.audit_tone OUTPUT_DIR [--out DIR]
    python -m jobs.audit_tone --inputs PHOTOS --avatars AVATARS [--style NAME] [--out DIR]

The first form reads this project's layout (`OUTPUT_DIR/avatars/<id>/input.png` beside
`avatar_<style>.png`; results.parquet is not needed, so a folder from an older version audits the same).
The second pairs another tool's files by name: an avatar `ravi_anime.png` (or `ravi-anime.png`,
`ravi.anime.png`) belongs to the input `ravi.jpg` and is style `anime`; an avatar named like its input
takes `--style` (default "avatar"); `--style` also overrides a suffix.

Nothing stored is trusted: landmarks are detected on every input and avatar (MediaPipe face mesh),
and each avatar is compared with its input under the tight skin mask and the whole face oval
(`actors.metrics.tone_compare`). Prints the table (per style and Monk band of the input: mean and
max |ΔITA|, |Δhue|, ΔE2000, lightening rate), and writes `tone_audit.json` (items and table) and
`tone_audit.csv` (one line per avatar) to `--out` (default: the audited folder; for the second form,
AVATARS). Exit 2 with one line on a folder it cannot audit.
"""
from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from dataset.report import TONE_AUDIT_HEADER, ToneAuditItem, tone_audit_rows, tone_audit_table
from jobs.common import OneLineParser, UserError, run_main

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
AVATAR_NAME = re.compile(r"^avatar_(?P<style>.+)$")
SEPARATORS = "_-."
JSON_NAME, CSV_NAME = "tone_audit.json", "tone_audit.csv"


@dataclass(frozen=True)
class Pair:
    """One avatar to audit against its input."""

    key: str  # the input's id (project layout) or file stem
    style: str
    input_path: Path
    avatar_path: Path


@dataclass
class AuditResult:
    """One pair, measured: the figures, or why there are none (status != "ok")."""

    key: str
    style: str
    avatar: str
    status: str  # ok / no_face_in_input / no_face_in_avatar / unreadable
    detail: str = ""
    mst_in: int | None = None
    ita_in: float | None = None
    hue_in: float | None = None
    delta_ita: float | None = None
    delta_hue: float | None = None
    delta_e: float | None = None
    lightening: float | None = None


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def project_pairs(output_dir: Path) -> list[Pair]:
    """Pairs of this project's layout; UserError when it is not one."""
    avatars_dir = output_dir / "avatars"
    if not output_dir.is_dir():
        raise UserError(f"{output_dir} is not a folder")
    if not avatars_dir.is_dir():
        raise UserError(f"{output_dir} has no avatars/ folder: not a jobs.generate output "
                        "(use --inputs PHOTOS --avatars AVATARS for another tool's files)")
    pairs = []
    for item in sorted(p for p in avatars_dir.iterdir() if p.is_dir()):
        input_path = item / "input.png"
        if not input_path.is_file():
            continue
        for avatar in _images(item):
            match = AVATAR_NAME.match(avatar.stem)
            if match:
                pairs.append(Pair(item.name, match["style"], input_path, avatar))
    if not pairs:
        raise UserError(f"{avatars_dir} holds no <id>/input.png with avatar_<style>.png beside it")
    return pairs


def matched_pairs(inputs_dir: Path, avatars_dir: Path, style: str | None) -> list[Pair]:
    """Avatars matched to inputs by file stem (longest input stem that the avatar's stem starts with,
    followed by a separator or nothing); UserError when the folders hold no pair."""
    for folder, flag in ((inputs_dir, "--inputs"), (avatars_dir, "--avatars")):
        if not folder.is_dir():
            raise UserError(f"{flag} {folder} is not a folder")
    inputs = {p.stem: p for p in _images(inputs_dir)}
    if not inputs:
        raise UserError(f"--inputs {inputs_dir} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    pairs = []
    for avatar in _images(avatars_dir):
        stem = avatar.stem
        candidates = [s for s in inputs if stem == s or (stem.startswith(s) and stem[len(s)] in SEPARATORS)]
        if not candidates:
            continue
        key = max(candidates, key=len)
        suffix = stem[len(key) + 1:]
        pairs.append(Pair(key, style or suffix or "avatar", inputs[key], avatar))
    if not pairs:
        raise UserError(f"no avatar in {avatars_dir} is named after an input in {inputs_dir} "
                        "(expected NAME.ext beside NAME_<style>.ext)")
    return pairs


def _read(path: Path) -> np.ndarray:
    from dataset.decode import decode_image

    return decode_image(path.read_bytes())


class ToneAuditor:
    """Measures pairs; the input of several avatars is measured once. Models load on first use."""

    def __init__(self) -> None:
        self._aligner = None
        self._inputs: dict[Path, object] = {}

    def _landmarks(self, rgb: np.ndarray):
        if self._aligner is None:
            from actors.align.aligner import FaceAligner

            self._aligner = FaceAligner()
        return self._aligner.landmarks(rgb)

    def _input_tone(self, path: Path):
        from actors.metrics.tone_compare import measure_input

        if path not in self._inputs:
            rgb = _read(path)
            landmarks = self._landmarks(rgb)
            self._inputs[path] = None if landmarks is None else measure_input(rgb, landmarks)
        return self._inputs[path]

    def measure(self, pair: Pair) -> AuditResult:
        from actors.metrics.tone_compare import compare_tone, face_regions
        from dataset.reasons import InputRejected

        result = AuditResult(pair.key, pair.style, str(pair.avatar_path), "ok")
        try:
            reference = self._input_tone(pair.input_path)
            if reference is None:
                result.status = "no_face_in_input"
                return result
            avatar = _read(pair.avatar_path)
        except (InputRejected, ValueError, OSError) as error:
            result.status, result.detail = "unreadable", str(error)
            return result
        result.mst_in, result.ita_in, result.hue_in = reference.mst, reference.ita, reference.hue
        landmarks = self._landmarks(avatar)
        if landmarks is None:
            result.status = "no_face_in_avatar"
            return result
        comparison = compare_tone(avatar, face_regions(avatar.shape, {"detected": landmarks}), reference)
        if not comparison.deltas:
            result.status, result.detail = "no_face_in_avatar", "the detected face holds too little skin"
            return result
        result.delta_ita, result.delta_hue = comparison.worst_ita, comparison.worst_hue
        result.delta_e, result.lightening = comparison.worst_delta_e, comparison.lightening
        return result

    def close(self) -> None:
        if self._aligner is not None:
            self._aligner.close()
            self._aligner = None


def audit(pairs: list[Pair]) -> list[AuditResult]:
    auditor = ToneAuditor()
    try:
        return [auditor.measure(pair) for pair in pairs]
    finally:
        auditor.close()


def items_of(results: list[AuditResult]) -> list[ToneAuditItem]:
    return [ToneAuditItem(r.style, r.mst_in, r.delta_ita, r.delta_hue, r.delta_e, r.lightening)
            for r in results if r.status == "ok"]


def format_table(rows: list[dict]) -> str:
    """The audit table as aligned text."""
    cells = [TONE_AUDIT_HEADER, *tone_audit_table(rows)]
    widths = [max(len(str(row[k])) for row in cells) for k in range(len(TONE_AUDIT_HEADER))]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(row, widths)) for row in cells)


def write_outputs(out_dir: Path, results: list[AuditResult], rows: list[dict], source: dict) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, csv_path = out_dir / JSON_NAME, out_dir / CSV_NAME
    counts: dict[str, int] = {}
    for r in results:
        counts[r.status] = counts.get(r.status, 0) + 1
    json_path.write_text(json.dumps({"source": source, "counts": counts, "table": rows,
                                     "items": [asdict(r) for r in results]}, indent=1), encoding="utf-8")
    fields = list(asdict(results[0]))
    with csv_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(asdict(r) for r in results)
    return json_path, csv_path


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m jobs.audit_tone", description=__doc__.split("\n\n")[0])
    parser.add_argument("output_dir", nargs="?", type=Path, help="a jobs.generate output folder")
    parser.add_argument("--inputs", type=Path, help="another tool's input photos (with --avatars)")
    parser.add_argument("--avatars", type=Path, help="another tool's avatars, named after their inputs")
    parser.add_argument("--style", help="style of avatars whose name carries none (or of all, with --inputs)")
    parser.add_argument("--out", type=Path, help="where tone_audit.json and .csv go (default: the audited folder)")
    return parser


def run(args: argparse.Namespace) -> list[AuditResult]:
    if args.output_dir is not None and (args.inputs or args.avatars):
        raise UserError("give either OUTPUT_DIR or --inputs with --avatars, not both")
    if args.output_dir is not None:
        pairs, out_dir = project_pairs(args.output_dir.resolve()), args.out or args.output_dir
        source = {"output_dir": str(args.output_dir)}
    elif args.inputs and args.avatars:
        pairs, out_dir = matched_pairs(args.inputs.resolve(), args.avatars.resolve(), args.style), args.out or args.avatars
        source = {"inputs": str(args.inputs), "avatars": str(args.avatars)}
    else:
        raise UserError("give an OUTPUT_DIR, or --inputs PHOTOS with --avatars AVATARS")
    results = audit(pairs)
    rows = tone_audit_rows(items_of(results))
    failed = [r for r in results if r.status != "ok"]
    print(f"Skin-tone audit of {len(results)} avatars ({len(results) - len(failed)} measured"
          + (f", {len(failed)} not: " + ", ".join(sorted({r.status for r in failed})) if failed else "") + ")")
    print(format_table(rows) if rows else "No avatar could be measured.")
    json_path, csv_path = write_outputs(Path(out_dir), results, rows, source)
    print(f"Wrote {json_path} and {csv_path}")
    return results


def main(argv: list[str] | None = None) -> int:
    return run_main(run, build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
