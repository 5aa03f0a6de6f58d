"""What do a gallery's JPEG previews of HEIC photos cost (`ferlab predict --html`)?

``--photos`` 12-megapixel photos (4032x3024, an iPhone's; the astronaut's portrait on a grey
canvas) are saved as HEIC and as JPEG. For each, untimed, `ferlab.predict_files` finds the
faces; then, alternately ``--repeats`` times, `ferlab.viewer.write_gallery` writes the page:
the JPEGs' links to the photos, the HEICs' with a preview of each (1,600 pixels on a side).
Reported: wall seconds, and the previews' size on disk.

    python benchmarks/gallery_previews.py [--photos 20] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import pillow_heif
from PIL import Image

from ferlab.hardware import machine_description
from ferlab.predict import predict_files
from ferlab.viewer import write_gallery

ASTRONAUT = Path(__file__).resolve().parents[1] / "ferlab" / "assets" / "astronaut.jpg"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    pillow_heif.register_heif_opener()
    canvas = Image.new("RGB", (4032, 3024), (128, 128, 128))
    canvas.paste(Image.open(ASTRONAUT).resize((1536, 1536)), (1200, 700))
    runs = []
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        results = {}
        for kind in ("jpg", "heic"):
            (folder / kind).mkdir()
            for i in range(args.photos):
                canvas.save(folder / kind / f"IMG_{i:04d}.{kind}", quality=90)
            results[kind] = list(predict_files([str(folder / kind)], None, progress=False))
        for repeat in range(args.repeats):
            for kind in ("jpg", "heic"):
                page = folder / f"{kind}-{repeat}.html"
                started = time.perf_counter()
                write_gallery(page, results[kind])
                previews = page.with_name(f"{page.stem}.previews")
                runs.append({"photos": kind, "round": repeat, "seconds": round(time.perf_counter() - started, 2),
                             "preview_bytes": sum(p.stat().st_size for p in previews.rglob("*.jpg"))})
                print(json.dumps(runs[-1]), flush=True)
                shutil.rmtree(previews, ignore_errors=True)
    print(json.dumps({"photos": f"{args.photos} of 4032x3024", "machine": machine_description(), "runs": runs},
                     indent=1))


if __name__ == "__main__":
    main()
