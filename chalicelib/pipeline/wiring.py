"""The composition root: the one place that subscribes the pipeline's reactions to the
domain's committed changes (core/reactions.py). Importing it wires them, once per process;
every entry point (app.py, the workers, the operator commands) imports it before it acts.

A deployment's status change (deployments/service.py, StatusChanged):
- keeps its project's status in step (deployments.follow_project_status);
- gives back its build slot once it leaves pending/building (builds.release_slot);
- starts the deploy workflow once it is built, or created deploying (workflow.start_when_built).
A project's deletion (projects/service.py, ProjectDeleted) stops what it runs and queues
the purge of its data (actions.project_deleted).

Which build engine and app runtime run is picked by stage in engines.py.
"""

from __future__ import annotations

from chalicelib.core import reactions
from chalicelib.deployments import service as deployments
from chalicelib.deployments.service import StatusChanged
from chalicelib.pipeline import actions, builds, workflow
from chalicelib.projects.service import ProjectDeleted


def wire() -> None:
    reactions.subscribe(StatusChanged, deployments.follow_project_status)
    reactions.subscribe(StatusChanged, builds.release_slot)
    reactions.subscribe(StatusChanged, workflow.start_when_built)
    reactions.subscribe(ProjectDeleted, actions.project_deleted)


wire()
