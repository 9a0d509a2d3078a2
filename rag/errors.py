"""Errors a user can cause; the CLI turns each into a one-line message and a non-zero exit."""


class RagError(Exception):
    """Base class for every error the library raises on bad input or bad files."""


class EmptyQuestionError(RagError):
    """The question is empty or only whitespace."""


class InvalidArgumentError(RagError):
    """An option has a value the library cannot use (k <= 0, unknown mode, …)."""


class CorpusError(RagError):
    """The corpus is missing, empty, or holds a file that cannot be read as UTF-8 text."""


class ModelError(RagError):
    """The embedding model cannot be found, converted or loaded."""


class IndexMissingError(RagError):
    """No index has been built for this corpus and model yet."""


class IndexCorruptError(RagError):
    """An index file is truncated, garbled or disagrees with its manifest."""


class IndexWriteError(RagError):
    """The index folder cannot be created or written (a path through a file, no permission, a
    read-only or full disk)."""


class CitationError(RagError):
    """A citation does not name a passage or line of the corpus."""


class DocumentNotFoundError(InvalidArgumentError):
    """A document selection (`--doc`, `docs=[…]`) names no document of the corpus."""


class ConversionError(RagError):
    """A file given to `rag add` cannot be turned into corpus text (not a PDF, encrypted, scanned, …)."""


class StoreError(RagError):
    """The index store cannot be used as asked: a Milvus URI that does not answer, a collection
    built by another model, an index type the target does not support, a locked Milvus Lite path."""
