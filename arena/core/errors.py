"""The error every domain raises for a failure whose message can be shown to the user as is."""


class ArenaError(Exception):
    """A failure with a message fit to show the user as it is."""
