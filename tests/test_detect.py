import cv2
import numpy as np
import pytest

from ferlab.detect import DETECTORS, Face, _tile_starts, crop_faces, detect_faces, eye_angle
from ferlab.imageio import load_image

from .conftest import ASTRONAUT_FACE


def overlap(a, b) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    w = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    h = max(0, min(ay + ah, by + bh) - max(ay, by))
    return w * h / (aw * ah + bw * bh - w * h)


@pytest.mark.parametrize("detector", list(DETECTORS))
def test_finds_the_astronaut_and_nothing_else(astronaut, detector):
    faces = detect_faces(load_image(astronaut), detector)
    assert len(faces) == 1
    assert overlap(faces[0].box, ASTRONAUT_FACE) > 0.6


@pytest.mark.parametrize("detector", list(DETECTORS))
def test_blank_image_has_no_face(detector):
    assert detect_faces(np.full((240, 320), 128, np.uint8), detector) == []


def test_large_photos_are_searched_downscaled_and_boxes_map_back(astronaut):
    import cv2

    big = cv2.resize(load_image(astronaut), (2048, 2048), interpolation=cv2.INTER_CUBIC)
    faces = detect_faces(big, "hog")
    assert len(faces) == 1
    assert overlap(faces[0].box, tuple(4 * v for v in ASTRONAUT_FACE)) > 0.6


def test_crop_uses_margin_and_replicates_borders():
    gray = np.zeros((100, 100), np.uint8)
    gray[40:60, 40:60] = 255
    tight = crop_faces(gray, [Face((40, 40, 20, 20), 1.0)], margin=0.0)
    assert tight.shape == (1, 48, 48) and tight.min() == 255
    wide = crop_faces(gray, [Face((40, 40, 20, 20), 1.0)], margin=0.5)
    assert wide[0, 24, 24] == 255 and wide[0, 2, 2] == 0
    corner = crop_faces(gray, [Face((0, 0, 10, 10), 1.0)], margin=0.5)
    assert corner.shape == (1, 48, 48)


def test_crop_turns_the_eye_line_level():
    import cv2

    gray = np.zeros((200, 200), np.uint8)
    cv2.line(gray, (60, 80), (140, 120), 255, 9)  # a bar through both "eyes", climbing 26.6 degrees
    face = Face((60, 60, 80, 80), 1.0, {"right_eye": (60.0, 80.0), "left_eye": (140.0, 120.0)})
    assert eye_angle(face) == pytest.approx(26.57, abs=0.01)
    level = crop_faces(gray, [face], margin=0.0)[0]
    tilted = crop_faces(gray, [face], margin=0.0, align_min_tilt=None)[0]
    assert np.array_equal(crop_faces(gray, [face], margin=0.0, align_min_tilt=30)[0], tilted)
    assert (level[24] > 200).all()  # the bar now runs along the middle row
    assert (level[8] < 50).all() and (level[40] < 50).all()
    assert not (tilted[24] > 200).all()


def test_alignment_undoes_a_head_tilt(astronaut):
    import cv2

    rgb = load_image(astronaut)
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    upright = crop_faces(gray, detect_faces(rgb, "blazeface"), 0.15)[0].astype(float)
    x, y, w, h = ASTRONAUT_FACE
    turn = cv2.getRotationMatrix2D((x + w / 2, y + h / 2), 25, 1.0)
    tilted_rgb = cv2.warpAffine(rgb, turn, rgb.shape[1::-1], borderMode=cv2.BORDER_REFLECT)
    faces = detect_faces(tilted_rgb, "blazeface")
    assert len(faces) == 1 and eye_angle(faces[0]) == pytest.approx(-25, abs=6)
    tilted_gray = cv2.cvtColor(tilted_rgb, cv2.COLOR_RGB2GRAY)
    aligned = crop_faces(tilted_gray, faces, 0.15)[0].astype(float)
    unaligned = crop_faces(tilted_gray, faces, 0.15, align_min_tilt=None)[0].astype(float)
    # The detector's box differs a little between the two photos; the turn is what must match.
    assert np.corrcoef(aligned.ravel(), upright.ravel())[0, 1] > 0.6
    assert np.corrcoef(unaligned.ravel(), upright.ravel())[0, 1] < 0.4


@pytest.mark.parametrize("detector", ["blazeface", "haar"])
def test_fifty_faces_in_one_photo(astronaut, detector):
    rgb = load_image(astronaut)
    tile = rgb[30:210, 130:310]  # 180x180 around the face
    grid = np.concatenate([np.concatenate([tile] * 10, 1)] * 5, 0)  # 900x1800: BlazeFace searches it in tiles
    faces = detect_faces(grid, detector)
    assert len(faces) == 50
    assert len({(f.box[0] // 180, f.box[1] // 180) for f in faces}) == 50  # one per tile


def test_small_faces_of_a_big_group_photo_are_found(astronaut):
    tile = cv2.resize(load_image(astronaut)[30:210, 130:310], (125, 125), interpolation=cv2.INTER_AREA)  # faces 64 px
    photo = np.full((1500, 2000, 3), 110, np.uint8)
    for row in range(7):
        for col in range(10):
            photo[20 + 210 * row : 145 + 210 * row, 20 + 195 * col : 145 + 195 * col] = tile
    faces = detect_faces(photo, "blazeface")  # searched at full size in tiles of 512 px and more
    assert len({(f.box[1] // 210, f.box[0] // 195) for f in faces}) == len(faces) == 70  # the old tiling found 2


def test_a_big_frame_is_searched_around_the_faces_near_which_it_is_told_to_look(astronaut):
    tile = cv2.resize(load_image(astronaut)[30:210, 130:310], (125, 125), interpolation=cv2.INTER_AREA)  # faces 64 px
    frame = np.full((720, 1280, 3), 110, np.uint8)
    frame[100:225, 100:225] = tile
    frame[500:625, 1000:1125] = tile
    everywhere = detect_faces(frame, "blazeface")  # too small for the whole frame at 192 px: found in tiles
    assert len(everywhere) == 2
    (near_one,) = detect_faces(frame, "blazeface", near=[everywhere[0].box])  # no tiles: the other is not found
    assert overlap(near_one.box, everywhere[0].box) > 0.8
    assert len(detect_faces(frame, "blazeface", near=[])) == 0
    assert len(detect_faces(frame, "hog", near=[])) == 2  # other detectors search the whole frame anyway
    small = frame[:480, :640]
    assert len(detect_faces(small, "blazeface", near=[])) == 1  # a frame not searched in tiles is searched whole


def test_a_face_cut_out_tight_is_found_too(astronaut):
    x, y, w, h = ASTRONAUT_FACE
    tight = load_image(astronaut)[y - 10 : y + h + 10, x - 10 : x + w + 10]  # the face fills the photo
    (face,) = detect_faces(tight, "blazeface")  # found on a second look, with a grey border around it
    assert overlap(face.box, (10, 10, w, h)) > 0.5
    assert face.box[0] >= 0 and face.box[0] + face.box[2] <= tight.shape[1]  # boxes stay inside the photo


def test_tiles_overlap_by_a_quarter_and_reach_the_edge():
    assert _tile_starts(400, 512) == [0]
    assert _tile_starts(2000, 512) == [0, 384, 768, 1152, 1488]
    starts = _tile_starts(1500, 1024)
    assert starts == [0, 476] and starts[-1] + 1024 == 1500


def test_blazeface_landmarks_sit_where_the_face_parts_are(astronaut):
    face = detect_faces(load_image(astronaut), "blazeface")[0]
    x, y, w, h = face.box
    marks = face.landmarks
    assert set(marks) == {"right_eye", "left_eye", "nose_tip", "mouth_center", "right_ear", "left_ear"}
    assert all(x <= px <= x + w and y <= py <= y + h for px, py in marks.values())
    # the subject's right eye is on the left of the picture, eyes above the nose, nose above the mouth
    assert marks["right_eye"][0] < marks["nose_tip"][0] < marks["left_eye"][0]
    assert max(marks["right_eye"][1], marks["left_eye"][1]) < marks["nose_tip"][1] < marks["mouth_center"][1]


def test_blazeface_finds_mirrored_and_shifted_faces(astronaut):
    rgb = load_image(astronaut)
    canvas = np.full((480, 640, 3), 90, np.uint8)
    canvas[200:380, 400:580] = rgb[30:210, 130:310][:, ::-1]
    faces = detect_faces(canvas, "blazeface")
    assert len(faces) == 1
    # the face spans x 48..140, y 37..129 of the tile; mirrored, x 40..132; then shifted by (400, 200)
    assert overlap(faces[0].box, (440, 237, 92, 92)) > 0.5
