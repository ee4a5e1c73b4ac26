"""The UUID namespace of FHIR output is the site's secret (with it, anyone could confirm a
guessed assessment id from a resource's UUID): settings printed or logged do not show it."""

from __future__ import annotations

import uuid

from pamlib.fhir import Assembler, BundleSettings


def test_the_namespace_is_not_in_the_repr() -> None:
    namespace = uuid.UUID("5b7e1f0a-3c55-4e0f-9d1e-2f6a8c4b9d70")
    settings = BundleSettings(namespace=namespace)
    assert str(namespace) not in repr(settings)
    assert "namespace=<hidden>" in repr(settings)
    assert "namespace=None" in repr(BundleSettings())
    assert Assembler(settings).namespace == namespace
