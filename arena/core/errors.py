"""TODO docstring."""


class ArenaError(Exception):
    """A failure with a message fit to show the user as it is."""
