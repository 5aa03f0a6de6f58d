import numpy as np
import pytest

from ferlab.track import FaceTracker, LabelHold, SmoothedTracks, TrackSmoother, box_iou


def test_box_iou():
    boxes = np.array([[0, 0, 10, 10], [5, 0, 10, 10], [20, 20, 5, 5]])
    iou = box_iou(boxes, boxes)
    assert np.diag(iou) == pytest.approx([1, 1, 1])
    assert iou[0, 1] == pytest.approx(50 / 150) and iou[1, 0] == iou[0, 1]
    assert iou[0, 2] == 0
    assert box_iou(np.zeros((0, 4)), boxes).shape == (0, 3)
    assert box_iou([[0, 0, 0, 0]], [[0, 0, 0, 0]])[0, 0] == 0  # empty boxes: no overlap, no division by zero
    # Widened by half their size on each side, boxes 15 apart (more than their width) overlap:
    # [-5, 15] and [10, 30] share 5 of 35.
    assert box_iou([[0, 0, 10, 10]], [[15, 0, 10, 10]], buffer=0.5)[0, 0] == pytest.approx(5 * 20 / (2 * 400 - 5 * 20))


def test_faces_keep_their_ids_when_their_order_changes():
    tracker = FaceTracker()
    left, right = [10, 10, 50, 50], [200, 10, 40, 40]
    assert tracker.update([left, right], 0.0) == [0, 1]
    # Each face moves a little and the detector now lists the right one first (it grew).
    assert tracker.update([[202, 10, 52, 52], [14, 10, 50, 50]], 0.1) == [1, 0]


def test_a_face_that_moved_while_missed_keeps_its_track():
    tracker = FaceTracker()
    tracker.update([[0, 0, 40, 40]], 0.0)
    assert tracker.update([[35, 5, 40, 40]], 0.4) == [0]  # plain IoU 0.06, buffered 0.36
    plain = FaceTracker(buffer=0)
    plain.update([[0, 0, 40, 40]], 0.0)
    assert plain.update([[35, 5, 40, 40]], 0.4) == [1]


def test_new_faces_and_faces_gone_too_long():
    tracker = FaceTracker(max_gap_s=1.0)
    assert tracker.update([[0, 0, 40, 40]], 0.0) == [0]
    assert tracker.update([], 0.5) == []
    assert tracker.update([[2, 0, 40, 40], [300, 300, 40, 40]], 0.9) == [0, 1]  # back within the gap; a newcomer
    assert tracker.update([], 1.0) == []
    assert tracker.update([[2, 0, 40, 40]], 2.5) == [2]  # unseen for 1.6 s: a new track, never an old id again
    assert tracker.update([[100, 0, 40, 40]], 2.6) == [3]  # no overlap with any live track


def test_sparse_frames_keep_their_tracks():
    tracker = FaceTracker(max_gap_s=1.0)
    assert [tracker.update([[0, 0, 40, 40]], 3.0 * frame) for frame in range(4)] == [[0]] * 4  # seen each frame
    assert tracker.update([], 12.0) == []
    assert tracker.update([[0, 0, 40, 40]], 15.0) == [1]  # missed in the frame before, and long gone


def test_each_track_continues_at_most_one_face():
    tracker = FaceTracker()
    tracker.update([[0, 0, 40, 40]], 0.0)
    assert sorted(tracker.update([[0, 0, 40, 40], [2, 2, 40, 40]], 0.1)) == [0, 1]


def test_rejects_bad_settings():
    with pytest.raises(ValueError, match="min_iou"):
        FaceTracker(min_iou=0)
    with pytest.raises(ValueError, match="buffer"):
        FaceTracker(buffer=-0.1)
    with pytest.raises(ValueError, match="max_gap_s"):
        FaceTracker(max_gap_s=-1)
    with pytest.raises(ValueError, match="time constant"):
        TrackSmoother(-0.5)
    for margin in (-0.1, 1.0):
        with pytest.raises(ValueError, match="label margin"):
            LabelHold(margin)


def test_smoothing_moves_each_track_toward_its_new_frames_by_the_time_passed():
    smoother = TrackSmoother(time_constant_s=1.0)
    happy, sad = np.eye(7)[3], np.eye(7)[4]
    assert smoother.update(0, happy, 0.0) == pytest.approx(happy)  # a new track starts at its frame
    after_one_constant = smoother.update(0, sad, 1.0)
    assert after_one_constant[4] == pytest.approx(1 - np.exp(-1)) and after_one_constant.sum() == pytest.approx(1)
    assert smoother.update(1, sad, 1.0) == pytest.approx(sad)  # tracks are smoothed apart
    # The same change seen over more frames moves it by the same amount: the frame rate does not matter.
    fine = TrackSmoother(1.0)
    fine.update(0, happy, 0.0)
    for step in range(1, 11):
        settled = fine.update(0, sad, step / 10)
    assert settled == pytest.approx(after_one_constant)
    assert TrackSmoother(0.0).update(0, sad, 5.0) == pytest.approx(sad)


def test_a_label_is_held_until_another_expression_leads_it_by_more_than_the_margin():
    hold = LabelHold(margin=0.2)
    happy, between, sad = np.eye(7)[3], np.array([0, 0, 0, 0.4, 0.55, 0, 0.05]), np.eye(7)[4]
    assert hold.update(0, happy) == 3  # a new track takes its frame's top expression
    assert hold.update(0, between) == 3  # Sad leads by 0.15: Happy stays
    assert hold.update(1, between) == 4  # tracks are held apart
    assert hold.update(0, sad) == 4  # a clear change is taken at once
    assert [LabelHold(0.0).update(0, p) for p in (happy, between)] == [3, 4]  # margin 0: each frame's top
    hold.forget({1})
    assert hold.update(0, between) == 4  # track 0 had ended: it starts again from its frame


def test_smoothed_tracks_forget_the_labels_of_ended_tracks():
    tracks = SmoothedTracks(smooth_s=0, label_margin=0.2)
    happy = np.eye(7)[3][None]
    for time_s, box in ((0.0, [10, 10, 50, 50]), (5.0, [500, 500, 50, 50]), (5.1, [500, 500, 50, 50])):
        (track,), (probabilities,) = tracks.update([box], happy, time_s)
        tracks.labels.update(track, probabilities)
    # track 0, in neither of the last two frames and unseen past the tracker's gap, has ended
    assert set(tracks.labels._labels) == {1}
