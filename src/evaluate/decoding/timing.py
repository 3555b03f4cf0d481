"""Optional per-stage timing of the decoder (seconds per named stage)."""
import time


class StageClock:
    """Adds the time since the previous lap to ``timings[name]`` (no-op without a dict)."""

    def __init__(self, timings):
        self.timings = timings
        self.last = time.perf_counter() if timings is not None else 0.0

    def lap(self, name):
        """Charge the seconds since the previous lap (or the start) to stage ``name``."""
        if self.timings is not None:
            now = time.perf_counter()
            self.timings[name] = self.timings.get(name, 0.0) + now - self.last
            self.last = now
