"""The one exception type for bad user input: its message names file, layer and field."""


class ArasError(Exception):
    """Bad input (file, trace, model, config): the message says what and where.

    The command line prints ``aras: <message>`` and exits non-zero; nothing partial is written.
    """
