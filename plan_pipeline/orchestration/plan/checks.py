"""Asset checks: the planning conservation laws.

Checks are declared on the stage assets (``check_specs``) and evaluated inside the
stage's step on the frame that was just stored: the IO manager's round trip is exact,
so this is what readers see, and it costs no extra step or pool slot. Blocking checks
stop downstream stages when a law is broken.
"""
import dagster as dg
import pandas as pd

from plan_pipeline.orchestration.plan.partitions import plan_version_partitions


def spec(name: str, asset: str, description: str, blocking: bool = True) -> dg.AssetCheckSpec:
    """A check of one stage asset, partitioned like it: results belong to a plan version."""
    return dg.AssetCheckSpec(name=name, asset=asset, blocking=blocking, description=description,
                             partitions_def=plan_version_partitions)


def check_result(spec_: dg.AssetCheckSpec, violations: pd.DataFrame, **metadata) -> dg.AssetCheckResult:
    passed = violations.empty
    meta = {"violations": dg.MetadataValue.int(len(violations)), **metadata}
    if not passed:
        meta["first_violations"] = dg.MetadataValue.md(
            "```\n" + violations.head(20).to_string(index=False) + "\n```"
        )
    return dg.AssetCheckResult(
        check_name=spec_.name,
        asset_key=spec_.asset_key,
        passed=passed,
        severity=dg.AssetCheckSeverity.ERROR,
        description=spec_.description if passed else f"{len(violations)} violation(s): {spec_.description}",
        metadata=meta,
    )
