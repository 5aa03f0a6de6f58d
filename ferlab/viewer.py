"""`ferlab video --html`: the web page's video player as one file beside a video's timeline,
opened in a browser without a server. It is the page itself (``assets/index.html``) with the
analysis in it, which plays the video from where it lies with each face boxed and one strip per
face track, and saves the timeline CSV and the JSON as the page does."""

from __future__ import annotations

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
