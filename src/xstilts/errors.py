"""Exceptions the command reports in one line each: bad input (exit 2) and failed jobs (exit 1)."""


class UserError(Exception):
    """Bad input (config, data file, path). The CLI prints it as one line and exits with code 2."""


class JobsFailed(RuntimeError):
    """Some jobs of a run raised ({job_id: one-line error}); the others that could run have finished."""

    def __init__(self, failed: dict[str, str]):
        self.failed = failed
        super().__init__(f"{len(failed)} job(s) failed: " + "; ".join(f"{k}: {v}" for k, v in failed.items()))
