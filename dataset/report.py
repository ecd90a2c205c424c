"""`report.html`: a self-contained batch report for a generate run (plots inlined, links to files).

Sections: counts by status and reason, throughput over time, ITA in vs out (before and after the
tone guard), the skin-tone audit table (per style and Monk band: |ΔITA|, |Δhue|, ΔE2000, lightening
rate, before and after the guard), MST confusion matrix (input vs avatar), identity-similarity
histogram, a contact sheet of aligned inputs beside their avatars, and links to every GLB.

The tone audit figures (`ToneAuditItem`, `tone_audit_rows`) are shared with `python -m jobs.audit_tone`,
which measures any output folder itself.
"""
from __future__ import annotations

import base64
import html
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

CONTACT_SHEET_LIMIT = 48  # inputs shown in the contact sheet
SAME_PERSON_THRESHOLD = 0.363  # SFace cosine (actors.metrics.identity; dataset code may not import actors)
LIGHTENED_ITA = 3.0  # an avatar more than this many ITA° lighter than its input counts as lightened
MONK_BANDS = (("MST 1–3", 1, 3), ("MST 4–6", 4, 6), ("MST 7–10", 7, 10))  # by the input's Monk tone


@dataclass(frozen=True)
class ToneAuditItem:
    """One avatar's skin tone against its input's (avatar − input; +ΔITA = lighter).

    delta_hue and delta_e are None where a source did not record them (results from an older version).
    """

    style: str
    mst_in: int | None
    delta_ita: float  # worst ΔITA° over the measurements (signed)
    delta_hue: float | None  # worst Δhue° (signed)
    delta_e: float | None  # worst CIEDE2000 of the median skin colours
    lightening: float  # largest ΔITA° over the measurements (> LIGHTENED_ITA: lightened)


def monk_band(mst: int | None) -> str:
    for name, low, high in MONK_BANDS:
        if mst is not None and low <= int(mst) <= high:
            return name
    return "MST unknown"


TONE_AUDIT_HEADER = ["style", "Monk band", "avatars", "mean |ΔITA|", "max |ΔITA|", "mean |Δhue|", "max |Δhue|",
                     "mean ΔE2000", "max ΔE2000", "lightened (> 3° ITA)"]


def tone_audit_rows(items: list[ToneAuditItem]) -> list[dict]:
    """Per style and Monk band (and each style over all bands): count, mean and max |ΔITA|, |Δhue|,
    ΔE2000, and the lightening rate. Keys are TONE_AUDIT_HEADER's; None where no item has the value."""

    def stats(values: list[float | None]) -> tuple[float | None, float | None]:
        present = [abs(v) for v in values if v is not None]
        return (float(np.mean(present)), float(np.max(present))) if present else (None, None)

    rows = []
    for style in sorted({item.style for item in items}):
        of_style = [item for item in items if item.style == style]
        groups = [(name, [i for i in of_style if monk_band(i.mst_in) == name]) for name, _, _ in MONK_BANDS]
        groups += [("MST unknown", [i for i in of_style if monk_band(i.mst_in) == "MST unknown"]), ("all", of_style)]
        for band, group in groups:
            if not group:
                continue
            ita, hue, de = (stats([getattr(i, k) for i in group]) for k in ("delta_ita", "delta_hue", "delta_e"))
            rows.append(dict(zip(TONE_AUDIT_HEADER, [
                style, band, len(group), *ita, *hue, *de,
                sum(i.lightening > LIGHTENED_ITA for i in group) / len(group)])))
    return rows


def tone_audit_table(rows: list[dict]) -> list[list[str]]:
    """tone_audit_rows as text cells (degrees to 0.1, the rate as a percentage)."""
    def cell(key: str, value) -> str:
        if value is None:
            return "n/a"
        if key.startswith("lightened"):
            return f"{100.0 * value:.0f}%"
        return f"{value:.1f}" if isinstance(value, float) else str(value)

    return [[cell(key, row[key]) for key in TONE_AUDIT_HEADER] for row in rows]


def tone_items_from_results(rows: list[dict], raw: bool = False) -> tuple[list[ToneAuditItem], bool]:
    """(items, complete) from results rows: the guard's per-style audit columns (`raw`: before the guard).
    A results file from before those columns gives ΔITA = ita_out (or ita_raw) − ita_in alone, and
    complete=False."""
    items, complete = [], True
    suffix = "_raw" if raw else ""
    for row in rows:
        if row.get("status") != "ok":
            continue
        styles = row.get("styles") or []
        if row.get("delta_ita" + suffix) is not None:
            for k, style in enumerate(styles):
                items.append(ToneAuditItem(
                    style, row.get("mst_in"), row["delta_ita" + suffix][k],
                    (row.get("delta_hue" + suffix) or [None] * len(styles))[k],
                    (row.get("delta_e" + suffix) or [None] * len(styles))[k],
                    (row.get("lightening" + suffix) or row["delta_ita" + suffix])[k]))
            continue
        complete = False
        ita_avatar = row.get("ita_raw" if raw else "ita_out") or []
        if row.get("ita_in") is None:
            continue
        for style, ita in zip(styles, ita_avatar):
            if ita is not None:
                delta = float(ita) - float(row["ita_in"])
                items.append(ToneAuditItem(style, row.get("mst_in"), delta, None, None, delta))
    return items, complete


def _tone_audit_section(rows: list[dict]) -> list[str]:
    parts = ["<h2 id='tone-audit'>Skin-tone audit</h2>"]
    written, complete = tone_items_from_results(rows)
    if not written:
        return parts + ["<p>No 2D avatars in this run.</p>"]
    parts.append(
        "<p>Avatar against its aligned input, per style and Monk band of the input (MST 1–3, 4–6, 7–10). "
        "Worst case over two masks (tight skin; whole face oval, 10–90% L*) and every landmark source "
        "(carried through the style; detected on the avatar). ITA° and hue angle h = atan2(b*, a*) "
        "(Thong et al., ICCV 2023) of the median skin colour; ΔE2000 between the median colours. "
        f"Lightened: more than {LIGHTENED_ITA:g}° ITA lighter under any measurement.</p>")
    if not complete:
        parts.append("<p><b>Results from an older version:</b> ΔITA is ita_out − ita_in on one mask only; "
                     "hue and ΔE2000 were not recorded. <code>python -m jobs.audit_tone OUTPUT_DIR</code> "
                     "measures the folder itself.</p>")
    parts.append("<h3>As written</h3>")
    parts.append(_table(TONE_AUDIT_HEADER, tone_audit_table(tone_audit_rows(written)), table_id="tone-audit-written"))
    before, _ = tone_items_from_results(rows, raw=True)
    if before:
        parts.append("<h3>Before the tone guard</h3>")
        parts.append(_table(TONE_AUDIT_HEADER, tone_audit_table(tone_audit_rows(before)), table_id="tone-audit-raw"))
    return parts


def _figure_to_data_uri(figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _image_uri(path: Path, side: int = 128) -> str | None:
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        return None
    image = cv2.resize(image, (side, side), interpolation=cv2.INTER_AREA)
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])
    return "data:image/jpeg;base64," + base64.b64encode(encoded.tobytes()).decode() if ok else None


def _flatten(rows: list[dict], key: str) -> list:
    return [v for row in rows for v in (row.get(key) or [])]


def _plots(rows: list[dict], started_at: float | None) -> dict[str, str | None]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plots: dict[str, str | None] = {}
    ok = [r for r in rows if r["status"] == "ok"]

    finished = sorted(r["finished_at"] for r in rows if r.get("finished_at"))
    if finished:
        # Items of one actor batch finish together; the clock starts when the job (or its last resume) started.
        start = min(started_at or finished[0], finished[0])
        elapsed = np.concatenate([[0.0], np.array(finished) - start])
        figure, axis = plt.subplots(figsize=(6, 3))
        axis.plot(elapsed, np.arange(len(elapsed)), drawstyle="steps-post")
        axis.set_xlabel("seconds since the job started")
        axis.set_ylabel("items finished")
        axis.set_title(f"Throughput: {len(finished) / max(elapsed[-1], 1e-3):.2f} items/s overall")
        plots["throughput"] = _figure_to_data_uri(figure)
        plt.close(figure)

    pairs = [(r["ita_in"], raw, out) for r in ok if r.get("ita_in") is not None
             for raw, out in zip(r.get("ita_raw") or [], r.get("ita_out") or [])]
    if pairs:
        ita_in, ita_raw, ita_out = (np.array(v, dtype=float) for v in zip(*pairs))
        figure, axis = plt.subplots(figsize=(5, 5))
        axis.scatter(ita_in, ita_raw, s=14, alpha=0.6, label="avatar before tone guard")
        axis.scatter(ita_in, ita_out, s=14, alpha=0.8, label="avatar as written")
        low, high = float(min(ita_in.min(), ita_raw.min(), ita_out.min())) - 5, float(max(ita_in.max(), ita_raw.max(), ita_out.max())) + 5
        axis.plot([low, high], [low, high], "k--", linewidth=1, label="no drift")
        axis.set_xlabel("input skin ITA°")
        axis.set_ylabel("avatar skin ITA°")
        axis.legend(loc="upper left", fontsize=8)
        axis.set_title("Skin tone: input vs avatar")
        plots["ita"] = _figure_to_data_uri(figure)
        plt.close(figure)

    mst_pairs = [(r["mst_in"], out) for r in ok if r.get("mst_in") for out in (r.get("mst_out") or []) if out]
    if mst_pairs:
        matrix = np.zeros((10, 10), dtype=int)
        for mst_in, mst_out in mst_pairs:
            matrix[int(mst_in) - 1, int(mst_out) - 1] += 1
        figure, axis = plt.subplots(figsize=(5, 4.5))
        image = axis.imshow(matrix, cmap="Blues")
        for (i, j), count in np.ndenumerate(matrix):
            if count:
                axis.text(j, i, str(count), ha="center", va="center", fontsize=8)
        axis.set_xticks(range(10), [str(i) for i in range(1, 11)])
        axis.set_yticks(range(10), [str(i) for i in range(1, 11)])
        axis.set_xlabel("avatar MST")
        axis.set_ylabel("input MST")
        axis.set_title("Monk Skin Tone: input vs avatar")
        figure.colorbar(image, ax=axis, shrink=0.8)
        plots["mst"] = _figure_to_data_uri(figure)
        plt.close(figure)

    identity = [v for v in _flatten(ok, "identity") if v is not None]
    if identity:
        figure, axis = plt.subplots(figsize=(6, 3))
        axis.hist(identity, bins=20, range=(-0.2, 1.0), color="#a07e56")
        axis.axvline(SAME_PERSON_THRESHOLD, color="k", linestyle="--", label=f"same person > {SAME_PERSON_THRESHOLD}")
        axis.set_xlabel("SFace cosine, input vs avatar")
        axis.set_ylabel("avatars")
        axis.legend(fontsize=8)
        plots["identity"] = _figure_to_data_uri(figure)
        plt.close(figure)
    return plots


def _table(header: list[str], body: list[list], table_id: str | None = None) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    rows = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in body)
    id_attribute = f" id='{html.escape(table_id)}'" if table_id else ""
    return f"<table{id_attribute}><tr>{head}</tr>{rows}</table>"


def build_report(output_dir: Path) -> str:
    """The report's HTML for a generate output folder (reads results.parquet and manifest.json)."""
    output_dir = Path(output_dir)
    rows = pq.read_table(output_dir / "results.parquet").to_pylist()
    manifest_path = output_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    plots = _plots(rows, manifest.get("started_at"))

    statuses: dict[str, int] = {}
    reasons: dict[tuple[str, str], int] = {}
    for row in rows:
        statuses[row["status"]] = statuses.get(row["status"], 0) + 1
        if row.get("reason"):
            key = (row["status"], row["reason"])
            reasons[key] = reasons.get(key, 0) + 1

    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>Indian Avatar AI — batch report</title>",
        "<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}img.plot{max-width:100%}"
        ".sheet td{text-align:center;font-size:11px}</style></head><body>",
        "<h1>Batch report</h1>",
        f"<p>{len(rows)} inputs. Wall time {manifest.get('wall_time_s', '?')} s. "
        f"Request: <code>{html.escape(json.dumps(manifest.get('request', {})))}</code></p>",
        "<h2>Counts by status</h2>", _table(["status", "count"], sorted(statuses.items())),
        "<h2>Rejections and failures by reason</h2>",
        _table(["status", "reason", "count"], [[s, r, c] for (s, r), c in sorted(reasons.items())]) if reasons else "<p>None.</p>",
    ]
    titles = {"throughput": "Throughput over time", "ita": "Skin tone (ITA°) in vs out",
              "mst": "MST confusion matrix", "identity": "Identity similarity"}
    for key, title in titles.items():
        parts.append(f"<h2>{title}</h2>")
        parts.append(f"<img class='plot' id='plot-{key}' src='{plots[key]}'>" if plots.get(key) else "<p>No data.</p>")
        if key == "ita":
            parts.extend(_tone_audit_section(rows))

    parts.append("<h2>Contact sheet</h2><table class='sheet'>")
    shown = [r for r in rows if r["status"] == "ok"][:CONTACT_SHEET_LIMIT]
    for row in shown:
        cells = []
        for name in ["input.png", *[Path(p).name for p in (row.get("avatar_paths") or [])],
                     *([Path(row["views_path"]).name] if row.get("views_path") else [])]:
            uri = _image_uri(output_dir / "avatars" / row["id"] / name)
            cells.append(f"<td><img src='{uri}'><br>{html.escape(name)}</td>" if uri else f"<td>{html.escape(name)} missing</td>")
        parts.append(f"<tr><td>{html.escape(Path(row['source']).name)}</td>{''.join(cells)}</tr>")
    parts.append("</table>")
    if len([r for r in rows if r["status"] == "ok"]) > CONTACT_SHEET_LIMIT:
        parts.append(f"<p>First {CONTACT_SHEET_LIMIT} shown.</p>")

    glbs = [(r["source"], r["glb_path"]) for r in rows if r.get("glb_path")]
    parts.append("<h2>3D heads</h2>")
    parts.append("<ul>" + "".join(f"<li><a href='{html.escape(path)}'>{html.escape(Path(source).name)}</a></li>"
                                  for source, path in glbs) + "</ul>" if glbs else "<p>No 3D heads in this run.</p>")
    parts.append("</body></html>")
    return "".join(parts)


def write_report(output_dir: Path) -> Path:
    output_dir = Path(output_dir)
    path = output_dir / "report.html"
    tmp = path.with_suffix(".html.tmp")
    tmp.write_text(build_report(output_dir), encoding="utf-8")
    tmp.replace(path)
    return path
