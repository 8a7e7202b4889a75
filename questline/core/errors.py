class QuestlineError(Exception):
    """Base class for errors raised by Questline."""


class ConfigError(QuestlineError):
    """A recipe or override is invalid; the message names the field."""
