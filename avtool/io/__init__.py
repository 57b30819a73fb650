"""Shared input/output: audio, video (ffmpeg), files written atomically."""
