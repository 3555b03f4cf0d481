"""MindSpore's profiler over the first steps of a training run (``enable_profiling``)."""
from pathlib import Path

import mindspore

#: Steps profiled with enable_profiling.
PROFILE_STEPS = 10


class StepProfiler:
    """MindSpore's profiler over the first ``PROFILE_STEPS`` steps (``enable_profiling``)."""

    def __init__(self, settings, log):
        self.log = log
        self.profiler = None
        if not settings.enable_profiling:
            return
        self.path = Path(settings.save_model_path) / "profiler"
        log(f"profiling the first {PROFILE_STEPS} steps into {self.path}")
        self.profiler = mindspore.Profiler(output_path=str(self.path))

    def step_done(self, steps_run):
        """Stop after ``PROFILE_STEPS`` steps."""
        if self.profiler is not None and steps_run >= PROFILE_STEPS:
            self.finish()

    def finish(self):
        """Stop and write the analysis (once)."""
        if self.profiler is None:
            return
        profiler, self.profiler = self.profiler, None
        try:
            profiler.stop()
            profiler.analyse()
            self.log(f"profile written to {self.path}")
        except Exception as exc:  # profiling must not end a training run
            self.log(f"warning: profiling failed: {str(exc).splitlines()[0] if str(exc) else exc!r}")
