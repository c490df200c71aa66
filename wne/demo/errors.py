"""The demo's user-facing error: a bad request, named so that its message is shown as is."""


class DemoInputError(ValueError):
    """A problem with a user's request (bad image, unavailable model); the message names it."""
