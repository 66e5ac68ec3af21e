"""One error base per seam; the CLI catches only `AcrguardError` and prints its one-line message."""


class AcrguardError(Exception):
    """Base of every error a user may see. `str(err)` is a single line naming what and where."""

    def __str__(self) -> str:
        # A user sees exactly one line, whatever the underlying message held.
        return " ".join(super().__str__().split())


class ReferenceError_(AcrguardError):
    """An image reference that cannot be parsed."""


class ImageError(AcrguardError):
    """An image source (archive, layout, registry) that cannot be read or is malformed."""


class RegistryError(ImageError):
    """A registry answered with an error or could not be reached."""


class DigestMismatchError(ImageError):
    """A blob's content does not match its digest or declared size."""


class LayerError(ImageError):
    """A layer that cannot be read safely (corrupt, truncated, over a limit)."""


class LimitExceededError(LayerError):
    """A configured bound (bytes, members, file size, depth) was exceeded."""


def one_line(err: BaseException, limit: int = 500) -> str:
    """Any exception as one bounded line for a log or a stored status: its message with white space folded,
    or its type's name where the message is empty."""
    return (" ".join(str(err).split()) or type(err).__name__)[:limit]


def os_error(exc: OSError) -> str:
    """`/x/out.json: no such file or directory` from an OSError, rather than its repr with `[Errno 2]`."""
    reason = (exc.strerror or str(exc)).lower() if exc.strerror else str(exc)
    where = exc.filename if exc.filename is not None else ""
    return f"{where}: {reason}" if where else reason


def counted(count: int, noun: str, plural: str = "") -> str:
    """`1 image`, `2 images`, `0 records` (English plurals: `noun + "s"` unless given)."""
    return f"{count:,} {noun if count == 1 else plural or noun + 's'}"
