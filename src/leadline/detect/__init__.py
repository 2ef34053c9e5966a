"""What a scan learns beyond port states: today the MAC vendor table (oui); next, services and OS."""

__all__: list[str] = []
