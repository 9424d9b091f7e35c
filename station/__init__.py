"""stationd and the station domain: what the station knows, how it seals it, how it locks."""

from importlib.metadata import version

#: The installed distribution's version (pyproject.toml is the one place it is written).
__version__ = version("kontaktstation")
