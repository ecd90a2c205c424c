"""Real-ESRGAN upscaling of small faces: milliseconds per face per model, and what it does to identity and tone.

    python -m bench.upscale [--threads 1,2] [--models a,b] [--face-px 64] [--quality] [--sheet PNG] [--json bench/results/upscale.json]

Faces: the real-photo fixtures (`tests/fixtures/faces`), each shrunk so its face box is 64 px wide
(eyes ~22–32 px apart), as archive photos and IMFDB crops carry them. Alignment is done once; the
timed step is `FaceUpscaler.upscale_for_crop` (the region the 512² crop samples, ~90–110 px square,
super-resolved and back-projected), mean over the faces after one warm-up, per model and ncnn thread
count. The machine's load average is recorded beside the numbers: other processes slow ncnn a lot.

`--quality` adds, per model with and without back-projection: SFace cosine between the crop of the
64-px copy and the crop of the full-resolution photo (mean, min), skin ITA°/hue° moved by upscaling
(same photo, same mask, with vs without) and off the full-resolution crop, and a sharpness ratio
(Laplacian variance over the skin, relative to the full-resolution crop).
"""
from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import argparse  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from actors.align.upscale import MODELS  # noqa: E402
from bench.common import RESULTS_DIR, print_table, write_json  # noqa: E402



def small_faces(face_px: int) -> list[dict]:
    """Per fixture: the full-resolution aligned face, a copy whose face box is `face_px` wide and its
    aligned face (no upscaling)."""
    from actors.align.aligner import AlignerOptions, FaceAligner
    from actors.align.upscale import UpscaleOptions
    from dataset.reasons import InputRejected
    from tests.real_faces import load_rgb, real_face_paths

    items = []
    with FaceAligner(AlignerOptions(min_face_size=16), upscale=UpscaleOptions(enabled=False)) as aligner:
        for path in real_face_paths():
            rgb = load_rgb(path)
            reference = aligner.align(rgb)
            factor = face_px / (reference.bbox[2] - reference.bbox[0])
            small = cv2.resize(rgb, (round(rgb.shape[1] * factor), round(rgb.shape[0] * factor)), interpolation=cv2.INTER_AREA)
            try:
                plain = aligner.align(small)
            except InputRejected as rejection:  # below ~48 px some faces are no longer found at all
                print(f"  skipped {path.name} at {face_px} px: {rejection}")
                continue
            items.append({"name": path.name, "reference": reference, "small": small, "plain": plain})
    return items


def time_models(items: list[dict], models: list[str], threads: list[int]) -> list[dict]:
    from actors.align.upscale import FaceUpscaler, UpscaleOptions

    rows = []
    for model in models:
        for count in threads:
            upscaler = FaceUpscaler(UpscaleOptions(model=model, threads=count))
            first = items[0]
            upscaler.upscale_for_crop(first["small"], first["plain"].source_to_crop, 512)  # warm-up: loads the net
            times, sides = [], []
            for item in items:
                start = time.perf_counter()
                result = upscaler.upscale_for_crop(item["small"], item["plain"].source_to_crop, 512)
                times.append((time.perf_counter() - start) * 1000.0)
                x0, y0, x1, y1 = result.region
                sides.append(((x1 - x0) * (y1 - y0)) ** 0.5)
            upscaler.close()
            rows.append({"model": model, "threads": count, "ms_per_face": float(np.mean(times)),
                         "ms_min": float(np.min(times)), "ms_max": float(np.max(times)), "region_px": float(np.mean(sides))})
            print(f"  {model} threads={count}: {np.mean(times):.0f} ms/face", flush=True)
    return rows


def _skin_tone(crop: np.ndarray, mask: np.ndarray) -> np.ndarray:
    from actors.metrics.skin_tone import ita_from_lab, skin_pixels_lab

    lab = skin_pixels_lab(crop, mask)
    median = np.median(lab, axis=0)
    return np.array([np.median(ita_from_lab(lab)), np.degrees(np.arctan2(median[2], median[1]))])


def _sharpness(crop: np.ndarray, mask: np.ndarray) -> float:
    grey = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY).astype(np.float32)
    return float(np.var(cv2.Laplacian(grey, cv2.CV_32F)[mask]))


def quality(items: list[dict], models: list[str], sheet: Path | None) -> list[dict]:
    from actors.align.upscale import FaceUpscaler, UpscaleOptions
    from actors.align.warp import warp_similarity
    from actors.metrics.identity import IdentityModel, cosine_similarity

    identity = IdentityModel()
    variants = {"none": None}
    for model in models:
        variants[model] = UpscaleOptions(model=model)
        variants[f"{model} (no back-projection)"] = UpscaleOptions(model=model, back_projection=False)
    crops = {item["name"]: {"original": item["reference"].crop} for item in items}
    rows = []
    for variant, options in variants.items():
        upscaler = None if options is None else FaceUpscaler(options)
        cosines, moved, off, sharp = [], [], [], []
        for item in items:
            reference, plain = item["reference"], item["plain"]
            if upscaler is None:
                crop = plain.crop
            else:
                result = upscaler.upscale_for_crop(item["small"], plain.source_to_crop, 512)
                crop = warp_similarity(result.image, result.source_to_crop, 512)
            crops[item["name"]][variant] = crop
            cosines.append(cosine_similarity(identity.embed(crop), identity.embed(reference.crop)))
            moved.append(_skin_tone(crop, plain.skin_mask) - _skin_tone(plain.crop, plain.skin_mask))
            off.append(_skin_tone(crop, plain.skin_mask) - _skin_tone(reference.crop, reference.skin_mask))
            sharp.append(_sharpness(crop, plain.skin_mask) / _sharpness(reference.crop, reference.skin_mask))
        if upscaler is not None:
            upscaler.close()
        moved, off = np.abs(moved), np.abs(off)
        rows.append({"variant": variant, "sface_mean": float(np.mean(cosines)), "sface_min": float(np.min(cosines)),
                     "max_dITA_by_upscaling": float(moved[:, 0].max()), "max_dhue_by_upscaling": float(moved[:, 1].max()),
                     "max_dITA_vs_full_res": float(off[:, 0].max()), "max_dhue_vs_full_res": float(off[:, 1].max()),
                     "sharpness_vs_full_res": float(np.mean(sharp))})
        print(f"  {variant}: SFace {np.mean(cosines):.3f}", flush=True)
    if sheet is not None:
        write_sheet(crops, ["original", "none", *[m for m in ("realesr-animevideov3-x4", "realesrgan-x4plus") if m in models]], sheet)
    return rows


def write_sheet(crops: dict, columns: list[str], path: Path, side: int = 192) -> None:
    """One row per face: the full-resolution crop, then the 64-px copy's crop per variant."""
    from PIL import Image, ImageDraw

    sheet = Image.new("RGB", (side * len(columns), (side + 14) * len(crops) + 14), "white")
    draw = ImageDraw.Draw(sheet)
    for j, column in enumerate(columns):
        draw.text((j * side + 3, 1), column if column != "none" else "64-px face, no upscaling", fill="black")
    for i, (name, row) in enumerate(crops.items()):
        draw.text((3, 14 + i * (side + 14)), name, fill="black")
        for j, column in enumerate(columns):
            tile = Image.fromarray(row[column]).resize((side, side), Image.LANCZOS)
            sheet.paste(tile, (j * side, 28 + i * (side + 14)))
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    print(f"wrote {path}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", default="1,2", help="ncnn thread counts to time, comma-separated")
    parser.add_argument("--models", default=",".join(MODELS), help="Real-ESRGAN models, comma-separated")
    parser.add_argument("--face-px", type=int, default=64, help="width of the face box the photos are shrunk to")
    parser.add_argument("--quality", action="store_true", help="also measure identity, tone and sharpness per model")
    parser.add_argument("--sheet", type=Path, default=None, help="with --quality: write a before/after PNG here")
    parser.add_argument("--json", type=Path, default=RESULTS_DIR / "upscale.json")
    args = parser.parse_args(argv)
    threads = [int(t) for t in args.threads.split(",")]
    models = args.models.split(",")
    unknown = sorted(set(models) - set(MODELS))
    if unknown:
        parser.error(f"unknown models {unknown}: choose from {list(MODELS)}")

    items = small_faces(args.face_px)
    load_before = os.getloadavg()
    speed = time_models(items, models, threads)
    load_after = os.getloadavg()
    columns = ["model", "threads", "ms_per_face", "ms_min", "ms_max", "region_px"]
    print_table(f"Real-ESRGAN per {args.face_px}-px face ({len(items)} real faces; load average {load_before[0]:.1f} → {load_after[0]:.1f})", speed, columns)
    payload = {"faces": len(items), "face_box_px": args.face_px, "speed": speed, "load_average": [load_before[0], load_after[0]]}
    if args.quality:
        rows = quality(items, models, args.sheet)
        title = f"Identity and tone on {args.face_px}-px copies of the real faces (vs the full-resolution crops)"
        print_table(title, rows, list(rows[0]))
        payload["quality"] = rows
    write_json(args.json, payload)


if __name__ == "__main__":
    main()
