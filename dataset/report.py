"""`report.html`: a self-contained batch report for a generate run (plots inlined, links to files).

Sections: counts by status and reason, throughput over time, ITA in vs out (before and after the
tone guard), MST confusion matrix (input vs avatar), identity-similarity histogram, a contact sheet
of aligned inputs beside their avatars, and links to every GLB.
"""
from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

CONTACT_SHEET_LIMIT = 48  # inputs shown in the contact sheet


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
        from actors.metrics.identity import SAME_PERSON_THRESHOLD

        figure, axis = plt.subplots(figsize=(6, 3))
        axis.hist(identity, bins=20, range=(-0.2, 1.0), color="#a07e56")
        axis.axvline(SAME_PERSON_THRESHOLD, color="k", linestyle="--", label=f"same person > {SAME_PERSON_THRESHOLD}")
        axis.set_xlabel("SFace cosine, input vs avatar")
        axis.set_ylabel("avatars")
        axis.legend(fontsize=8)
        plots["identity"] = _figure_to_data_uri(figure)
        plt.close(figure)
    return plots


def _table(header: list[str], body: list[list]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    rows = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in body)
    return f"<table><tr>{head}</tr>{rows}</table>"


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
