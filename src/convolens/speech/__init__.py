"""Speech: decode audio/video, transcribe with word timings, separate speakers.

Submodules import their heavy dependencies (PyAV, faster-whisper, torch) only when used,
so `import convolens` works without the `speech` extra.
"""
