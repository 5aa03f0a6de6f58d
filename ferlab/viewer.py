"""`ferlab video --html`: the web page's video player as one file beside a video's timeline,
opened in a browser without a server. It is the page itself (``assets/index.html``) with the
analysis in it, which plays the video from where it lies with each face boxed and one strip per
face track, and saves the timeline CSV and the JSON as the page does; and for several videos,
an overview page with links to their players (`write_index`)."""

from __future__ import annotations

import html
import json
import os
from importlib import resources
from pathlib import Path
from urllib.parse import quote

from .atomic import atomic_write_text


def write_viewer(path: str | Path, answer: dict, name: str, video: Path | None, copy: Path | None = None) -> Path:
    """Write the viewer of ``answer`` (`ferlab.video.video_answer`) to ``path``: it plays
    ``video`` (None for a camera or stream), or where the browser cannot play that (MPEG-4 Part
    2, HEVC), ``copy``, an annotated copy the browser plays (H.264 or WebM), if there is one;
    else it draws the faces on grey. ``name``: the video's, shown and given to saved files."""
    path = Path(path)
    view = {"name": name, "video": _link(video, path.parent), "copy": _link(copy, path.parent), "answer": answer}
    # "<" escaped, so that no text in the data can end the script element it lies in
    data = json.dumps(view, separators=(",", ":")).replace("<", "\\u003c")
    page = (resources.files("ferlab") / "assets" / "index.html").read_text()
    script = f'<script id="ferlab-view" type="application/json">{data}</script>\n</head>'
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
    a link to its viewer, how much of it was analyzed, and each face track with its label and
    the share of its frames each label had; the error of one that could not be read."""
    path = Path(path)
    rows = []
    for result in results:
        name = html.escape(Path(result["video"]).name)
        if "error" in result:
            rows.append(f'<tr><td>{name}</td><td colspan="2" class="error">{html.escape(result["error"])}</td></tr>')
            continue
        link = f'<a href="{_link(Path(result["html"]), path.parent)}">{name}</a>' if "html" in result else name
        span = f" ({result['frames'] / result['fps']:.1f} s)" if result["fps"] else ""
        tracks = "<br>".join(
            f"#{track['track']} <b>{track['label']}</b>, {track['first_s']:.1f}-{track['last_s']:.1f} s: " + ", ".join(
                f"{label} {share:.0%}" for label, share in sorted(track["label_shares"].items(), key=lambda s: -s[1])
                if share > 0)
            for track in result["tracks"]) or "no face"
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
