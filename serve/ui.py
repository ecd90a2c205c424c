"""Gradio UI at /ui: one photo in (upload or webcam), a 2D avatar and/or a 3D head out.

The UI submits through the same `AvatarService` as the HTTP API (same validation, queue, store and
expiry) and waits on the job, feeding its progress into Gradio's progress bar.

Results reach the browser as copies in Gradio's own cache folder, never from the results folder:
Gradio's file route serves whatever lies under its `allowed_paths`, which would include every job's
uploaded photo and record. The results folder is in Gradio's `blocked_paths` instead, so no Gradio
route serves anything from it; the copies go with Gradio's cache expiry and with "Delete my data".
"""
from __future__ import annotations

import html
import secrets
import shutil
from pathlib import Path
from typing import Any

from serve.head_viewer import mount_head_viewer, viewer_iframe
from serve.outputs import view_sort_key
from serve.runner import QueueFull
from serve.service import AvatarService
from serve.store import DONE, JobNotFound, JobRecord
from serve.uploads import UploadRejected

DOWNLOAD_ORDER = ("head.glb", "head_obj.zip", "views.png")

CSS = """
.swatch {display:inline-block; width:1.4em; height:1.4em; border:1px solid #777; border-radius:3px; vertical-align:middle; margin-right:.35em}
.tone-table td, .tone-table th {padding:.2em .6em; text-align:left}
"""


def build_ui(service: AvatarService):
    """The Blocks app; mount it with `mount_ui`."""
    import gradio as gr

    ttl = max(1, int(service.settings.ttl_s))
    with gr.Blocks(
        title="Indian Avatar AI",
        analytics_enabled=False,
        # Gradio keeps its own copies of uploads and outputs: drop them on the same schedule as results.
        delete_cache=(max(1, min(ttl, int(service.settings.sweep_interval_s))), ttl),
    ) as demo:
        gr.Markdown(
            "# Indian Avatar AI\nUpload a face photo (or take one with the webcam), pick a 2D style and/or a 3D head. "
            f"Your photo and results are deleted after {_duration(service.settings.ttl_s)}, or now with **Delete my data**."
        )
        job_id = gr.State("")
        with gr.Row():
            with gr.Column():
                photo = gr.Image(
                    label="Photo",
                    sources=["upload", "webcam"],
                    type="filepath",
                    image_mode=None,  # keep the uploaded file as is: the service checks and decodes it
                    elem_id="photo",
                    height=360,
                )
                with gr.Row():
                    make_2d = gr.Checkbox(value=True, label="2D avatar", elem_id="make-2d")
                    make_3d = gr.Checkbox(value=False, label="3D head", elem_id="make-3d")
                catalog = service.catalog
                styles = list(catalog.styles)
                style = gr.Radio(styles, value="cartoon" if "cartoon" in styles else styles[0], label="2D style",
                                 elem_id="style")
                with gr.Row():
                    engine = gr.Dropdown(list(catalog.stylizers.names), value=catalog.stylizers.default,
                                         label="2D engine", elem_id="engine")
                    head_engine = gr.Dropdown(list(catalog.choices()["heads"]), value="auto", label="3D head engine",
                                              elem_id="head-engine")
                run = gr.Button("Create avatar", variant="primary", elem_id="run")
            with gr.Column():
                avatar = gr.Image(label="2D avatar", type="filepath", interactive=False, elem_id="avatar", height=360)
                status = gr.Markdown(elem_id="status")
                tone = gr.HTML(label="Skin tone", elem_id="tone")
                identity = gr.Markdown(elem_id="identity")
        with gr.Row():
            head = gr.HTML(label="3D head", elem_id="head-viewer")  # rigged, with sliders (serve.head_viewer)
            views = gr.Gallery(label="7 views", columns=4, height=380, object_fit="contain", elem_id="views")
        downloads = gr.File(label="Downloads", file_count="multiple", interactive=False, elem_id="downloads")
        delete = gr.Button("Delete my data", variant="stop", elem_id="delete")

        outputs = [job_id, avatar, status, tone, identity, head, views, downloads]

        def create(photo_path: str | None, want_2d: bool, want_3d: bool, style_name: str, engine_name: str,
                   head_name: str, progress=gr.Progress()):
            choice = {"styles": (style_name,) if want_2d else (), "engine": engine_name, "head_engine": head_name}
            record = _submit_and_wait(service, photo_path, want_2d, want_3d, choice, progress, gr.Error)
            return _render(service, record, Path(demo.GRADIO_CACHE))

        def forget(current: str, *shown):
            if current:
                service.delete(current)
            _remove_cached_copies(shown, Path(demo.GRADIO_CACHE))
            return [None, "", None, "Deleted: your photo and results are gone from the server.", "", "", "", [], None]

        run.click(create, inputs=[photo, make_2d, make_3d, style, engine, head_engine], outputs=outputs)
        delete.click(forget, inputs=[job_id, photo, avatar, views, downloads], outputs=[photo, *outputs])
    # Let UI jobs reach the service queue, which enforces the real concurrency limit.
    demo.queue(default_concurrency_limit=service.settings.workers + service.settings.max_pending)
    return demo


def mount_ui(app, service: AvatarService, path: str = "/ui"):
    import gradio as gr

    demo = build_ui(service)
    results_dir = service.settings.results_dir.resolve()
    if Path(demo.GRADIO_CACHE).resolve().is_relative_to(results_dir):
        raise ValueError(f"Gradio's cache folder {demo.GRADIO_CACHE} lies inside the results folder {results_dir}: "
                         "choose another results_dir (or GRADIO_TEMP_DIR).")
    mount_head_viewer(app)  # /viewer and /static (three.js) for the 3D head viewer
    return gr.mount_gradio_app(
        app,
        demo,
        path=path,
        blocked_paths=[str(results_dir)],  # no Gradio route serves an upload, a record or a result from here
        max_file_size=service.settings.max_upload_bytes,
        ssr_mode=False,
        footer_links=["api"],
        css=CSS,
    )


def _remove_cached_copies(values, cache_dir: Path) -> None:
    """Delete Gradio's copies of the photo and results (uploads and outputs live in its cache folder)."""
    paths: list[str] = []
    for value in values:
        for item in value if isinstance(value, list) else [value]:
            item = item[0] if isinstance(item, (tuple, list)) else item
            if isinstance(item, str) and item:
                paths.append(item)
    cache_dir = cache_dir.resolve()
    for path in map(Path, paths):
        path = path.resolve()
        if path.is_relative_to(cache_dir) and path.is_file():  # never touch anything outside the cache
            path.unlink(missing_ok=True)
            if path.parent != cache_dir and not any(path.parent.iterdir()):
                path.parent.rmdir()


def _submit_and_wait(service, photo_path, want_2d, want_3d, choice: dict, progress, error_type) -> JobRecord:
    from actors.request import AvatarRequest

    if not photo_path:
        raise error_type("Upload a photo or take one with the webcam first.")
    modes = tuple(m for m, wanted in (("2d", want_2d), ("3d", want_3d)) if wanted)
    try:
        record = service.submit(Path(photo_path).read_bytes(), AvatarRequest(modes=modes, **choice))
    except ValueError as error:
        raise error_type(str(error)) from None
    except UploadRejected as error:
        raise error_type(error.detail) from None
    except QueueFull as error:
        raise error_type(f"The server is busy; try again in {error.retry_after_s} s.") from None
    progress(0.0, desc="queued")
    try:
        return service.wait(record.id, lambda fraction, message: progress(fraction, desc=message or "working"))
    except JobNotFound:
        raise error_type("The job was deleted before it finished.") from None


def _render(service: AvatarService, record: JobRecord, cache_dir: Path | None = None) -> list[Any]:
    """Values for [job_id, avatar, status, tone, identity, head viewer, views, downloads]; result files are
    copied under `cache_dir` (Gradio's cache) and shown from there; the 3D viewer loads the GLB from the API."""
    if record.status != DONE:
        message = f"**{record.status.capitalize()}**: {record.reason or 'error'}" + (f" — {record.detail}" if record.detail else "")
        return [record.id, None, message, "", "", "", [], None]
    if cache_dir is None:
        raise ValueError("`cache_dir` (Gradio's cache folder) is needed to show result files.")
    copies = cache_dir / f"avatar-{secrets.token_hex(8)}"

    def path(name: str) -> str | None:
        try:
            source = service.file(record.id, name)  # only whitelisted result files resolve
        except JobNotFound:
            return None
        copies.mkdir(parents=True, exist_ok=True)
        return str(shutil.copyfile(source, copies / name))

    row = record.result
    styles = row.get("styles") or []
    avatar = path(f"avatar_{styles[0]}.png") if styles else None
    view_names = sorted((n for n in record.files if n.startswith("view_")), key=view_sort_key)
    views = [(path(n), f"{view_sort_key(n)}°") for n in view_names]
    downloads = [path(n) for n in [f"avatar_{s}.png" for s in styles] + list(DOWNLOAD_ORDER) if n in record.files]
    seconds = (record.finished_at or record.created_at) - record.created_at
    status = f"**Done** in {seconds:.1f} s. Results are kept until they expire; **Delete my data** removes them now."
    return [
        record.id,
        avatar,
        status,
        tone_html(row),
        identity_markdown(row),
        viewer_iframe(record.id) if "head.glb" in record.files else "",
        [v for v in views if v[0]],
        [d for d in downloads if d] or None,
    ]


def mst_swatch(mst: int | None) -> str:
    from actors.metrics.skin_tone import MST_HEX

    if mst is None or not 1 <= int(mst) <= len(MST_HEX):
        return '<span class="swatch" title="unknown"></span>'
    colour = MST_HEX[int(mst) - 1]
    return f'<span class="swatch" style="background:#{colour}" title="MST {int(mst)}: #{colour}"></span>'


def tone_html(row: dict[str, Any]) -> str:
    """Skin tone before and after: ITA° with its band and MST with its Monk swatch, per style."""
    from actors.metrics.skin_tone import ita_band

    def ita(value) -> str:
        return "—" if value is None else f"{value:.1f}° ({ita_band(value)})"

    def mst(value) -> str:
        return f"{mst_swatch(value)}MST {value}" if value is not None else "—"

    rows = [f"<tr><td>input</td><td>{ita(row.get('ita_in'))}</td><td>{mst(row.get('mst_in'))}</td><td></td></tr>"]
    styles = row.get("styles") or []
    for i, style in enumerate(styles):
        out_ita = _item(row.get("ita_out"), i)
        out_mst = _item(row.get("mst_out"), i)
        correction = _item(row.get("tone_correction"), i)
        fix = f"guard {correction:+.1f}°" if correction else "no correction"
        rows.append(f"<tr><td>{html.escape(style)}</td><td>{ita(out_ita)}</td><td>{mst(out_mst)}</td><td>{fix}</td></tr>")
    return (
        '<table class="tone-table"><tr><th>skin tone</th><th>ITA</th><th>Monk</th><th></th></tr>'
        + "".join(rows)
        + "</table>"
    )


def identity_markdown(row: dict[str, Any]) -> str:
    lines = []
    for i, style in enumerate(row.get("styles") or []):
        value = _item(row.get("identity"), i)
        if value is None:
            reason = _item(row.get("identity_reason"), i) or "no face found in the avatar"
            lines.append(f"- **{style}** identity: n/a ({reason})")
        else:
            verdict = "same person" if value > 0.363 else "below the same-person threshold 0.363"
            lines.append(f"- **{style}** identity (SFace cosine): {value:.2f} — {verdict}")
    if row.get("nme") is not None:
        lines.append(f"- **3D** landmark error (NME): {100 * row['nme']:.1f}% of the inter-ocular distance")
    return "\n".join(lines)


def _item(values, index: int):
    return values[index] if values is not None and index < len(values) else None


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:g} h"
    if seconds >= 60:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"
