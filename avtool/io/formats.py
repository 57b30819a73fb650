"""Which media files the tools read and write, the frame rate of the visual models and the
default lip reader they share.

Kept free of numpy so that the CLI can name them in ``--help`` without loading anything heavy.
"""

from __future__ import annotations

#: Video inputs of lipread, v2a and separate (what a folder input expands to; ffmpeg reads them).
READER_SUFFIXES = (".mp4", ".mkv", ".mov", ".avi", ".webm", ".mpg", ".mpeg", ".m4v")
#: Video outputs :class:`avtool.io.video.VideoWriter` encodes (H.264 in these containers).
WRITER_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv")
#: Frames per second of every visual model here (GRID's rate); other rates are resampled to it.
MODEL_FPS = 25.0
#: Registry name of the default lip reader: ``avtool lipread``'s model and the frozen visual
#: front-end of the audio-visual separator and of the content V2A.
DEFAULT_LIP_READER = "lipread-grid-s1"
