"""Build and parse of each protocol's headers, one module per protocol; nothing is re-exported here."""

__all__: list[str] = []
