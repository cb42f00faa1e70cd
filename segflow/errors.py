"""User-facing errors. The CLI prints their message (never a stack trace) and exits non-zero."""


class SegflowError(Exception):
    """Base class: the message must tell the user what happened and what to do."""

    exit_code = 2


class WarehouseLocked(SegflowError):
    pass


class InputError(SegflowError):
    """Bad input that cannot be quarantined row by row (missing folder, unreadable file, bad option)."""


class BuildFailed(SegflowError):
    pass


class GateFailed(SegflowError):
    """A data-quality or model-quality gate failed: nothing downstream may publish."""


class NotReady(SegflowError):
    """A step was asked to run before the data it needs exists."""


class LoadFailed(SegflowError):
    """Loading stopped for a reason outside the files (memory, disk, permissions): the run fails loudly."""


class DeliveryFailed(SegflowError):
    """Some batches could not be delivered to the sink: they are dead-lettered (`segflow dead-letter`)."""
