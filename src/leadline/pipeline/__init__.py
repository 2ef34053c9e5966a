"""The scan pipeline: targets cut into host groups, phases over each group, hosts to the sinks.

``Scan`` runs it; ``phase.Phase`` is the contract every phase keeps;
``engines.Engines`` is the one door phases use to reach the network.
See docs/design.md for how a new scan type or post-scan phase fits in.
"""

from leadline.pipeline.engines import Engines, SystemEngines
from leadline.pipeline.phase import Phase
from leadline.pipeline.plan import ScanPlan
from leadline.pipeline.scan import Scan

__all__ = ["Engines", "Phase", "Scan", "ScanPlan", "SystemEngines"]
