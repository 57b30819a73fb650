"""avtool: one command-line toolkit for audio synthesis and audio-visual generation."""

__version__ = "0.1.0"
