"""Sticky A/B assignment: a hash of experiment, tenant and caller picks the variant.

The same caller always lands on the same variant while the experiment's variants and weights
stay the same; callers spread over the variants in proportion to their weights.
"""

from __future__ import annotations

import hashlib

from ragplane.query.flags.model import Experiment, Variant

_SCALE = float(2**64)


def variant_for(experiment: Experiment, tenant: str, caller: str) -> Variant:
    key = "\0".join((experiment.name, tenant, caller)).encode()
    point = int.from_bytes(hashlib.sha256(key).digest()[:8], "big") / _SCALE
    target = point * sum(v.weight for v in experiment.variants)
    for variant in experiment.variants:
        target -= variant.weight
        if target < 0:
            return variant
    return experiment.variants[-1]  # rounding at the very top of the range
