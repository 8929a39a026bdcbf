"""The registry of qTest kinds: ``KINDS``, in load order, drives the Dagster assets (one per stage: names,
descriptions, dependencies, check specs), the publishing loop and the reconciliation loop.

Adding a kind means a module here declaring its ``KIND`` (see ``base.Kind``), its place in ``KINDS``, its
mart, and its tests; ``vocabulary`` spells its object type once.
"""

from __future__ import annotations

from zephyr_qtest.lib.qtest.kinds import (
    attachment,
    module,
    release,
    requirement,
    test_case,
    test_case_version,
    test_cycle,
    test_log,
    test_run,
)
from zephyr_qtest.lib.qtest.kinds.base import Kind

KINDS: tuple[Kind, ...] = (
    module.KIND,
    # Older versions first: the current version of a case is written last.
    test_case_version.KIND,
    test_case.KIND,
    release.KIND,
    test_cycle.KIND,
    test_run.KIND,
    test_log.KIND,
    requirement.KIND,
    attachment.KIND,
)


def stages() -> tuple[str, ...]:
    """The publishing stages (asset names) in load order."""
    return tuple(dict.fromkeys(kind.stage for kind in KINDS))


def kinds_of_stage(stage: str) -> tuple[Kind, ...]:
    """The kinds a stage publishes, in load order; ValueError for an unknown stage."""
    kinds = tuple(kind for kind in KINDS if kind.stage == stage)
    if not kinds:
        raise ValueError(f"unknown stage {stage!r}")
    return kinds


def stage_description(stage: str) -> str:
    return " ".join(kind.description for kind in kinds_of_stage(stage))


def stage_marts(stage: str) -> tuple[str, ...]:
    """The ``qtest_mapping`` marts a stage reads."""
    return tuple(dict.fromkeys(mart for kind in kinds_of_stage(stage) for mart in kind.marts))


def upstream_stages(stage: str) -> tuple[str, ...]:
    """The stages published before a stage whose objects its kinds refer to."""
    upstream = (object_type.stage for kind in kinds_of_stage(stage) for object_type in kind.upstream)
    return tuple(dict.fromkeys(name for name in upstream if name is not None and name != stage))


def id_types_of_stage(stage: str) -> tuple[str, ...]:
    """The id-map types whose ids a stage's kinds need, loaded before it publishes."""
    return tuple(dict.fromkeys(t.name for kind in kinds_of_stage(stage) for t in kind.id_types))


def reconciled_types() -> tuple[str, ...]:
    """The reconciliation's object types (its table rows and the asset checks), in load order."""
    names = (t.name for kind in KINDS for t in (kind.result_type, *kind.children))
    return tuple(dict.fromkeys(names))


__all__ = [
    "KINDS",
    "Kind",
    "id_types_of_stage",
    "kinds_of_stage",
    "reconciled_types",
    "stage_description",
    "stage_marts",
    "stages",
    "upstream_stages",
]
