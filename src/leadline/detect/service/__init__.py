"""Service and version detection's decisions: the probe file, the matcher and the probe order (no I/O)."""

from leadline.detect.service.database import load_database
from leadline.detect.service.match import MatchOutcome, ServiceMatch, find_match, substitute
from leadline.detect.service.policy import PortProbing, probe_order
from leadline.detect.service.probes import Match, Probe, ProbeDatabase, ProbeFileError, parse_probes

__all__ = ["Match", "MatchOutcome", "PortProbing", "Probe", "ProbeDatabase", "ProbeFileError", "ServiceMatch",
           "find_match", "load_database", "parse_probes", "probe_order", "substitute"]
