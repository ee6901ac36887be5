"""The first of the two writes of a chunk differs from the second in its vector, by one step."""

from __future__ import annotations

import numpy as np
from weaviate.classes.data import DataObject

from ragplane.retrieval.store import chunk_uuid, with_nudged_vector


def test_the_nudged_vector_differs_as_float32_and_by_one_step_only() -> None:
    vector = [0.1, -0.25, 0.0]
    item = DataObject(properties={"text": "t"}, uuid=chunk_uuid("d#0"), vector=vector)

    nudged = with_nudged_vector(item)

    assert isinstance(nudged.vector, list)
    as_stored = np.asarray(nudged.vector, dtype=np.float32)
    original = np.asarray(vector, dtype=np.float32)
    # Weaviate compares the float32 vectors it stores: they must differ there.
    assert not np.array_equal(as_stored, original)
    assert as_stored[0] == np.nextafter(original[0], np.float32(np.inf))
    assert np.array_equal(as_stored[1:], original[1:])
    assert (nudged.uuid, nudged.properties) == (item.uuid, item.properties)
    assert item.vector == vector
