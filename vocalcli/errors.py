"""Errors that the CLI turns into one-line messages.

Every message says what went wrong *and* what to do about it, because the user sees only the text.
"""

from __future__ import annotations


class VocalError(Exception):
    """Base of every expected failure; the CLI prints it without a traceback (exit code 1)."""

    exit_code = 1


class ProjectNotFound(VocalError):
    """No vocal.yaml in the directory or any parent."""


class ConfigError(VocalError):
    """A vocal.yaml key is unknown or its value is invalid; the message names the key."""


class AudioError(VocalError):
    """A file could not be decoded or holds no usable audio."""


class StaleArtifact(VocalError):
    """An artefact was made from inputs that have changed since; the message names the command to rerun."""


class MissingArtifact(VocalError):
    """An artefact a command needs does not exist yet; the message names the command that makes it."""


class DeviceError(VocalError):
    """A device was requested that this machine does not have."""


class CheckpointError(VocalError):
    """A checkpoint is unreadable, of the wrong kind, or does not match the configuration."""


class ProjectBusy(VocalError):
    """Another vocal process is writing the project; the message names it (command and PID)."""


class WriteError(VocalError):
    """A file could not be written (no permission, disk full, read-only disk); the message names it."""
