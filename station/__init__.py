"""stationd and the station domain: what the station knows, how it seals it, how it locks."""

__version__ = "0.1.0"
