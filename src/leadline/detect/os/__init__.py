"""OS detection: nmap's second-generation fingerprints, the nmap-os-db format, matching and the report."""

__all__: list[str] = []
