"""Pages of results to open in a web browser, offline, without a server.

- `write_viewer` (`ferlab video --html`): the web page's video player as one file beside a
  video's timeline. It is the page itself (``assets/index.html``) with the analysis in it,
  which plays the video from where it lies with each face boxed and one strip per face track,
  and saves the timeline CSV and the JSON as the page does.
- `write_index` (`ferlab video FOLDER --html`): an overview of several videos, with links to
  their players.
- `write_gallery` (`ferlab predict --html`): the photos with their faces boxed, filtered by
  label (``assets/gallery.html``); photos in a format web browsers do not show get a JPEG
  preview beside the page."""

from __future__ import annotations

import html
import json
import os
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from urllib.parse import quote

import cv2

from .atomic import atomic_write, atomic_write_text
from .imageio import ImageError, decode_image
from .predict import output_names

# Formats web browsers do not show (Safari alone shows HEIC and TIFF): a gallery shows a JPEG
# preview of these, at most this many pixels on its longer side.
PREVIEWED_SUFFIXES = {".heic", ".heif", ".tif", ".tiff", ".pgm", ".ppm"}
PREVIEW_SIDE = 1600


def write_viewer(path: str | Path, answer: dict, name: str, video: Path | None, copy: Path | None = None) -> Path:
    """Write the viewer of ``answer`` (`ferlab.video.video_answer`) to ``path``: it plays
    ``video`` (None for a camera or stream), or where the browser cannot play that (MPEG-4 Part
    2, HEVC), ``copy``, an annotated copy the browser plays (H.264 or WebM), if there is one;
    else it draws the faces on grey. ``name``: the video's, shown and given to saved files."""
    path = Path(path)
    view = {"name": name, "video": _link(video, path.parent), "copy": _link(copy, path.parent), "answer": answer}
    return _page_with_data(path, "index.html", "ferlab-view", view)


def write_gallery(path: str | Path, results: Iterable[dict], expected: dict[str, str] | None = None) -> Path:
    """A page of the photos of ``results`` (`ferlab.predict.predict_files`' or `read_results`'),
    each linked from where it lies with its faces boxed and labelled; filters show those with a
    face of one label, those without a face, those that failed; a click shows a photo large
    with each face's seven probabilities. ``expected``: each photo's (by path) true label, as
    `ferlab photo-accuracy` has them: each photo says it, and filters show the wrong ones (whose
    largest face has another label, or no face) and the right ones.

    A photo in a format web browsers do not show (HEIC, TIFF, PGM: `PREVIEWED_SUFFIXES`) is
    shown by a JPEG preview, written to ``<page>.previews/`` beside the page."""
    path = Path(path)
    results = list(results)
    previews = _write_previews([Path(r["path"]) for r in results if "error" not in r],
                               path.with_name(f"{path.stem}.previews"))
    photos = []
    for result in results:
        photo = {"url": _link(Path(result["path"]), path.parent), "name": Path(result["path"]).name}
        if Path(result["path"]) in previews:  # the boxes are in the photo's pixels, not the preview's
            preview, width, height = previews[Path(result["path"])]
            photo |= {"url": _link(preview, path.parent), "size": [width, height]}
        if expected is not None:
            photo["expected"] = expected[result["path"]]
        if "error" in result:
            photos.append(photo | {"error": result["error"], "faces": []})
            continue
        photos.append(photo | {"faces": [{key: face[key] for key in ("box", "label", "confidence", "probabilities")}
                                         for face in result["faces"]]})
    return _page_with_data(path, "gallery.html", "ferlab-photos", photos)


def _write_previews(photos: list[Path], folder: Path) -> dict[Path, tuple[Path, int, int]]:
    """A JPEG preview in ``folder`` of each of ``photos`` that browsers do not show, upright,
    with the photo's own size; none of a photo that cannot be read now."""
    shown = [photo for photo in photos if photo.suffix.lower() in PREVIEWED_SUFFIXES]
    previews = {}
    for photo, name in output_names(shown).items():
        try:
            decoded = decode_image(photo, PREVIEW_SIDE)
        except ImageError:
            continue
        rgb = decoded.rgb
        scale = PREVIEW_SIDE / max(rgb.shape[:2])
        if scale < 1:
            rgb = cv2.resize(rgb, (round(rgb.shape[1] * scale), round(rgb.shape[0] * scale)), interpolation=cv2.INTER_AREA)
        preview = folder / f"{name}.jpg"
        preview.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(preview) as tmp:
            cv2.imwrite(str(tmp), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
        previews[photo] = preview, decoded.width, decoded.height
    return previews


def _page_with_data(path: Path, asset: str, element: str, data) -> Path:
    """The page ``assets/<asset>`` with ``data`` as the JSON of its script ``element``, written
    to ``path`` (its folder made)."""
    # "<" escaped, so that no text in the data can end the script element it lies in
    text = json.dumps(data, separators=(",", ":")).replace("<", "\\u003c")
    page = (resources.files("ferlab") / "assets" / asset).read_text()
    script = f'<script id="{element}" type="application/json">{text}</script>\n</head>'
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_text(path, page.replace("</head>", script, 1))


def _link(target: Path | None, folder: Path) -> str | None:
    """A URL of ``target`` relative to ``folder`` (the page and the video can move together);
    an absolute file URL where there is no relative path (another Windows drive)."""
    if target is None:
        return None
    try:
        return quote(Path(os.path.relpath(target.resolve(), folder.resolve())).as_posix())
    except ValueError:
        return target.resolve().as_uri()


def write_index(path: str | Path, results: list[dict]) -> Path:
    """An overview page of several videos' results (`ferlab.video.analyze_videos`'): per video,
    a link to its viewer, how much of it was analyzed, each face track with its label and the
    share of its frames each label had (and all faces together, where there are several), and
    links to its annotated copy and subtitles where they were written; the error of one that
    could not be read."""
    from .video import tracks_and_all  # here: ferlab.video imports this module

    path = Path(path)
    rows = []
    for result in results:
        name = html.escape(Path(result["video"]).name)
        if "error" in result:
            rows.append(f'<tr><td>{name}</td><td colspan="2" class="error">{html.escape(result["error"])}</td></tr>')
            continue
        link = f'<a href="{_link(Path(result["html"]), path.parent)}">{name}</a>' if "html" in result else name
        outputs = [Path(result["annotated"])] if "annotated" in result else []
        outputs += [Path(subtitles) for subtitles in result.get("subtitles", [])]
        link += "".join(f'<br><a class="file" href="{_link(file, path.parent)}">{html.escape(file.name)}</a>'
                        for file in outputs)
        span = f" ({result['frames'] / result['fps']:.1f} s)" if result["fps"] else ""
        tracks = "<br>".join(
            ("All faces" if track["track"] == "all" else f"#{track['track']}")
            + f" <b>{track['label']}</b>, {track['first_s']:.1f}-{track['last_s']:.1f} s: " + ", ".join(
                f"{label} {share:.0%}" for label, share in sorted(track["label_shares"].items(), key=lambda s: -s[1])
                if share > 0)
            for track in tracks_and_all(result)) or "no face"
        stopped = f", stopped: {result['stopped']}" if result["stopped"] != "end" else ""
        rows.append(f"<tr><td>{link}</td><td>{result['analyzed_frames']} of {result['frames']} frames{span}{stopped}"
                    f"</td><td>{tracks}</td></tr>")
    page = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>ferlab: {len(results)} videos</title>
<style>
  body {{ font: 15px/1.45 system-ui, sans-serif; color: #1d2433; margin: 16px auto; max-width: 1100px; padding: 0 16px; }}
  table {{ border-collapse: collapse; width: 100%; }}
  td, th {{ border-bottom: 1px solid #d8dce4; padding: 6px 8px; text-align: left; vertical-align: top; }}
  .error {{ color: #b3261e; }}
  a.file {{ font-size: 0.85em; }}
</style>
</head>
<body>
<h1>ferlab: {len(results)} videos</h1>
<p>Each video's face tracks, with the share of its analyzed frames each label was the face's own. A
video's name opens its player (written by <code>ferlab video --html</code>).</p>
<table>
<tr><th>video</th><th>analyzed</th><th>face tracks</th></tr>
{chr(10).join(rows)}
</table>
</body>
</html>
"""
    return atomic_write_text(path, page)
