"""Stages 1-3 chained on an oracle case's inputs (each stage fed by our own previous stage)."""
from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import pandas as pd

from plan_pipeline.exports.reference_documents import aggregate_document, detail_document, mrp_document
from plan_pipeline.inputs.loader import load_input_dir
from plan_pipeline.planning.aggregate import plan_aggregate
from plan_pipeline.planning.detail import plan_detail
from plan_pipeline.planning.mrp import plan_mrp
from plan_pipeline.planning.types import PlanningInputs, PlanningParameters
from plan_pipeline_tests.planning.oracle_cases import OracleCase, load_case


@dataclass(frozen=True)
class ChainResult:
    case: OracleCase
    inputs: PlanningInputs
    params: PlanningParameters
    aggregate: pd.DataFrame
    aggregate_doc: dict
    detail: pd.DataFrame
    detail_doc: dict
    mrp: pd.DataFrame
    mrp_doc: dict


def run_chain(inputs: PlanningInputs, params: PlanningParameters):
    agg = plan_aggregate(inputs, params)
    agg_doc = aggregate_document(agg, inputs, params)
    det = plan_detail(agg, inputs, params)
    det_doc = detail_document(det, agg_doc, inputs, params)
    mrp = plan_mrp(det, inputs, params)
    mrp_doc = mrp_document(mrp, det_doc, inputs, params)
    return agg, agg_doc, det, det_doc, mrp, mrp_doc


@cache
def case_chain(name: str) -> ChainResult:
    case = load_case(name)
    inputs = load_input_dir(case.input_dir)
    params = case.params.resolved()
    return ChainResult(case, inputs, params, *run_chain(inputs, params))
