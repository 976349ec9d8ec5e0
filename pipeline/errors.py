"""The one error hierarchy: every expected failure is a PipelineError with a message for people."""

from __future__ import annotations


class PipelineError(Exception):
    """An expected failure whose message says what was wrong and what to do."""

    exit_code = 2

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n  {self.hint}" if self.hint else self.message


class PlanError(PipelineError):
    """A plan source that does not parse or does not resolve, located by file and line."""

    def __init__(
        self, message: str, *, file: str | None = None, line: int | None = None, hint: str | None = None
    ) -> None:
        self.file = file
        self.line = line
        self.reason = message
        where = ":".join(str(p) for p in (file, line) if p is not None)
        super().__init__(f"{where}: {message}" if where else message, hint=hint)

    def located(self, file: str) -> PlanError:
        """The same error naming `file` (parsers learn the file name late)."""
        return PlanError(self.reason, file=file, line=self.line, hint=self.hint)


class ChangeError(PipelineError):
    """A requested change that cannot be applied to the plan."""


class RenderError(PipelineError):
    """A letter or email that cannot be rendered."""


class ReplyError(PipelineError):
    """An email that cannot be read as a reply."""


class StoreError(PipelineError):
    """The store refused an operation (unknown plan, conflicting version...)."""


class ArchiveError(PipelineError):
    """An archive bundle that cannot be written or read."""


class StorageFull(ArchiveError):
    """The disk refused a write for want of space: the machine's trouble, retried once space is freed."""


class ConfigError(PipelineError):
    """Settings that are missing or wrong."""


class MailboxError(PipelineError):
    """A mailbox that cannot be reached or refused an operation.

    `transient` errors (a server down, throttling) are retried later; others need a person.
    """

    def __init__(self, message: str, *, transient: bool = False, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.transient = transient
