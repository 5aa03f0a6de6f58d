import csv
from functools import partial

import cv2
import numpy as np
import pytest

from ferlab import video_segments
from ferlab.classifier import load_model
from ferlab.imageio import load_image
from ferlab.predict import Analyzer, build_analyzer
from ferlab.video import VideoError, analyze_video
from ferlab.video_segments import match_tracks, plan_segments

FPS = 30


def write_clip(path, frames: int, gone: range = range(0)) -> None:
    """Two portraits drifting across a 480x240 frame at 30 fps; the second is away during ``gone``."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (480, 240))
    head = cv2.cvtColor(load_image(path.parent.parent / "astronaut.jpg"), cv2.COLOR_RGB2BGR)[20:200, 130:310]
    for frame in range(frames):
        canvas = np.full((240, 480, 3), 127, np.uint8)
        x = 10 + frame % 40
        canvas[30:210, x:x + 180] = head
        if frame not in gone:
            canvas[30:210, 290 - x // 2:470 - x // 2] = head[:, ::-1]
        writer.write(canvas)
    writer.release()


@pytest.fixture
def clip_folder(tmp_path, astronaut):
    (tmp_path / "astronaut.jpg").write_bytes(astronaut.read_bytes())
    (tmp_path / "clips").mkdir()
    return tmp_path / "clips"


@pytest.fixture
def short_segments(monkeypatch):
    """Segments of 40 frames (30 at least), so that a 120-frame clip is cut in three."""
    monkeypatch.setattr(video_segments, "SEGMENT_FRAMES", 40)
    monkeypatch.setattr(video_segments, "MIN_SEGMENT_FRAMES", 30)


def rows(path) -> list[dict]:
    with open(path) as handle:
        return list(csv.DictReader(handle))


def test_plan_cuts_a_long_file_into_segments_with_warm_up_before_each_cut(clip_folder):
    clip = clip_folder / "long.mp4"
    write_clip(clip, 1500)
    segments = plan_segments(clip, every=2, max_seconds=None, smooth_s=0.05, workers=2)
    assert [(s.warm_start, s.start, s.stop) for s in segments] == [(0, 0, 750), (720, 750, None)]  # 30 frames: 1 s
    assert all(s.every == 2 and s.start % 2 == 0 and s.warm_start % 2 == 0 for s in segments)
    assert len(plan_segments(clip, 1, None, 0.05, workers=2)) == 4  # 600 analyzed frames or fewer, two per worker
    assert plan_segments(clip, 1, None, 2.0, workers=2)[1].warm_start == 375 - 300  # five smoothing constants
    assert plan_segments(clip, 1, max_seconds=10, smooth_s=0.05, workers=2)[-1].start == 150
    assert plan_segments(clip, 1, None, 0.05, workers=1) == []
    assert plan_segments(clip, 6, None, 0.05, workers=2) == []  # 250 analyzed frames: one process is quicker
    assert plan_segments(0, 1, None, 0.05, workers=2) == []  # a camera is read in order


def test_workers_give_the_timeline_of_one_process(clip_folder, tiny_model, short_segments, tmp_path):
    clip = clip_folder / "clip.mp4"
    write_clip(clip, 120, gone=range(60, 105))  # away for 1.5 s across a cut: back as a new track
    one = analyze_video(clip, Analyzer(load_model(tiny_model)), tmp_path / "one", progress=False)
    frames = []
    three = analyze_video(clip, partial(build_analyzer, str(tiny_model)), tmp_path / "three", annotate=True,
                          progress=False, on_frame=frames.append, workers=2)
    assert three["frames"] == one["frames"] == 120 and three["stopped"] == "end"
    assert [t["track"] for t in one["tracks"]] == [0, 1, 2]
    assert three["tracks"] == one["tracks"]
    columns = ["frame", "time_s", "face", "track", "x", "y", "w", "h", "label"]
    assert [[r[c] for c in columns] for r in rows(three["timeline"])] == [[r[c] for c in columns]
                                                                         for r in rows(one["timeline"])]
    assert [f.index for f in frames] == list(range(120)) and frames[70].rgb.shape == (240, 480, 3)
    assert int(cv2.VideoCapture(three["annotated"]).get(cv2.CAP_PROP_FRAME_COUNT)) == 120
    with pytest.raises(ValueError, match="a function that builds the analyzer"):
        analyze_video(clip, Analyzer(load_model(tiny_model)), tmp_path / "x", progress=False, workers=2)
    with pytest.raises(ValueError, match="workers must be 1 or more, not 0"):
        analyze_video(clip, Analyzer(load_model(tiny_model)), tmp_path / "x", progress=False, workers=0)


class SideModel:
    """Happy where a face's left half is the brighter, Sad where its right half is, each by 0.2:
    a lead within the default label margin."""

    def predict_proba(self, crops: np.ndarray) -> np.ndarray:
        halves = crops.reshape(len(crops), 48, 2, 24).mean(axis=(1, 3))
        probabilities = np.full((len(crops), 7), 0.04)
        left_brighter = halves[:, 0] > halves[:, 1]
        probabilities[:, 3] = np.where(left_brighter, 0.5, 0.3)
        probabilities[:, 4] = np.where(left_brighter, 0.3, 0.5)
        return probabilities


def side_analyzer() -> Analyzer:
    return Analyzer(SideModel())


def test_workers_hold_each_tracks_label_from_the_start_of_the_video(clip_folder, short_segments, tmp_path):
    clip = clip_folder / "clip.mp4"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (480, 240))
    head = cv2.cvtColor(load_image(clip_folder.parent / "astronaut.jpg"), cv2.COLOR_RGB2BGR)[20:200, 130:310]
    head[:, 90:] = head[:, 90:] // 2  # lit from the left
    for frame in range(120):  # then, from frame 10 on, lit from the right: where the later segments warm up
        canvas = np.full((240, 480, 3), 127, np.uint8)
        canvas[30:210, 150:330] = head if frame < 10 else head[:, ::-1]
        writer.write(canvas)
    writer.release()
    one = analyze_video(clip, side_analyzer(), tmp_path / "one", progress=False)
    labels = [r["label"] for r in rows(one["timeline"])]
    assert len(labels) == 120 and set(labels) == {labels[0]}  # the first frame's label is held throughout
    own = analyze_video(clip, side_analyzer(), tmp_path / "own", progress=False, label_margin=0)
    assert len({r["label"] for r in rows(own["timeline"])}) == 2  # the mirror image leads the other way
    three = analyze_video(clip, partial(side_analyzer), tmp_path / "three", progress=False, workers=2)
    assert [r["label"] for r in rows(three["timeline"])] == labels


def test_short_videos_and_cameras_stay_in_one_process(clip_folder, tiny_model, tmp_path):
    clip = clip_folder / "short.mp4"
    write_clip(clip, 20)
    result = analyze_video(clip, partial(build_analyzer, str(tiny_model)), tmp_path / "out", progress=False, workers=4)
    assert result["analyzed_frames"] == 20 and len(result["tracks"]) == 2


def face(track: int, box: list[int]) -> dict:
    return {"track": track, "box": box}


def test_match_tracks_follows_boxes_on_the_frames_both_segments_analyzed():
    earlier = [(10, 1.0, [face(4, [0, 0, 50, 50]), face(7, [100, 0, 50, 50])]),
               (11, 1.1, [face(4, [2, 0, 50, 50]), face(7, [102, 0, 50, 50])])]
    later = [(10, 1.0, [face(1, [101, 0, 50, 50]), face(0, [1, 1, 50, 50]), face(2, [300, 0, 40, 40])]),
             (11, 1.1, [face(0, [2, 0, 50, 50]), face(1, [102, 0, 50, 50])]),
             (12, 1.2, [face(0, [3, 0, 50, 50])])]
    assert match_tracks(earlier, later) == {0: 4, 1: 7}  # track 2 is a face the earlier segment did not see
    assert match_tracks([], later) == {}
    with pytest.raises(VideoError, match="cannot be cut exactly; analyze it with one worker"):
        match_tracks(earlier, [(11, 1.3, [])])
