"""ferlab: facial expression recognition on FER2013, from the paper's CNN to photos and video."""

from .classifier import ExpressionClassifier, load_model
from .data import EMOTIONS, FER2013, DataFormatError, load_fer2013
from .predict import Analyzer, analyze
from .track import SmoothedTracks
from .video import VideoFrame, VideoStream, analyze_video, draw_video, read_faces

__version__ = "0.1.0"
__all__ = [
    "EMOTIONS", "FER2013", "Analyzer", "DataFormatError", "ExpressionClassifier", "SmoothedTracks", "VideoFrame",
    "VideoStream",
    "analyze", "analyze_video", "create_model", "draw_video", "list_models", "load_fer2013", "load_model", "read_faces",
]


def __getattr__(name: str):
    # The model registry needs PyTorch (the training extra); recognizing expressions does
    # not, so `import ferlab` loads it only when asked for.
    if name in ("create_model", "list_models"):
        from . import models

        return getattr(models, name)
    raise AttributeError(f"module 'ferlab' has no attribute {name!r}")
