"""stationd and the station's domain: what the station knows, how it keeps it sealed, how it locks."""

__version__ = "0.1.0"
