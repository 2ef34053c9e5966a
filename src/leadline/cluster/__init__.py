"""Scans spread over a Dask ``distributed`` cluster (``--cluster``); needs the ``cluster`` extra."""

__all__: list[str] = []
