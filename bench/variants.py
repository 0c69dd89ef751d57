"""The customers example as it was before catalog steps (its cleansed table crawled), run side by side."""

from __future__ import annotations

from gluerelay.local.cloud import LocalCloud
from gluerelay.local.template import substitute_definition
from gluerelay.pipelines.asl import compile_pipeline, to_text
from gluerelay.pipelines.model import Pipeline, Step
from gluerelay.pipelines.project import block_name

CATALOG_STEP = "catalog_cleansed"
CRAWL_STEP = "crawl_cleansed"


def crawled_variant(pipeline: Pipeline) -> Pipeline:
    """The pipeline as it was before catalog and quality steps: its catalog step replaced, in place, by a
    crawl of its drift crawler, and its summary gates left out (a step that needed one needs what it
    needed)."""
    catalog = pipeline.steps[CATALOG_STEP].catalog
    assert catalog is not None and catalog.crawler is not None
    gates = {s: step.needs for s, step in pipeline.steps.items() if step.kind == "quality"}

    def needs(step: Step) -> list[str]:
        return [n for needed in step.needs for n in gates.get(needed, [needed])]

    steps = {
        (CRAWL_STEP if step_id == CATALOG_STEP else step_id): (
            Step(crawler=catalog.crawler, needs=needs(step))
            if step_id == CATALOG_STEP
            else step.model_copy(update={"needs": needs(step)})
        )
        for step_id, step in pipeline.steps.items()
        if step_id not in gates
    }
    return pipeline.model_copy(update={"steps": steps})


def deployable(cloud: LocalCloud, pipeline: Pipeline) -> str:
    """A pipeline's definition as the cloud's template would deploy it (its DefinitionSubstitutions)."""
    substitutions = cloud.template.resolve(
        cloud.template.resources[block_name(pipeline.pipeline)]["Properties"]["DefinitionSubstitutions"]
    )
    return substitute_definition(to_text(compile_pipeline(pipeline)), substitutions, pipeline.pipeline)
