"""`POST /v1/projects/detect`: the build plan a deployment would use, without deploying.

The files come from an upload (checked by the same streaming pass as a build's) or from a
shallow clone of a git ref (the same clone step as a build's, builders/git.py), and the
plan from the same code as the builds (buildplan/plan.py `detect`).
"""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path

from chalicelib.archive.inspect import InvalidArchive, inspect_archive
from chalicelib.archive.manifests import from_directory
from chalicelib.aws import objects
from chalicelib.builders.git import CloneFailed, checkout
from chalicelib.buildplan.model import PlanError
from chalicelib.buildplan.plan import detect as detect_plan
from chalicelib.core.errors import NotFound, UploadIncomplete, ValidationFailed
from chalicelib.core.settings import get_settings
from chalicelib.deployments.models import Detection, DetectRequest
from chalicelib.git import remote
from chalicelib.git import repository as repositories
from chalicelib.git.refs import BadRef, redact
from chalicelib.store import uploads as upload_store

CLONE_TIMEOUT_S = 60


def detect(workspace_id: str, body: DetectRequest) -> Detection:
    files = _upload_files(workspace_id, body.upload_id) if body.upload_id else _git_files(body)
    try:
        plan, evidence, confidence = detect_plan(files, {"root_directory": body.root_directory})
    except PlanError as error:
        raise ValidationFailed({"root_directory": [str(error)]}) from None
    return Detection(
        runtime=plan.runtime,
        framework=plan.framework,
        install_command=plan.install_command,
        build_command=plan.build_command,
        start_command=plan.start_command,
        output_directory=plan.output_directory,
        runs_server=plan.runtime != "static",
        evidence=evidence,
        confidence=confidence,
    )


def _upload_files(workspace_id: str, upload_id: str) -> dict[str, bytes]:
    upload = upload_store.find(upload_id)
    if upload is None or upload["workspace_id"] != workspace_id:
        raise NotFound("Upload")
    if objects.size_of(upload["key"]) is None:
        raise UploadIncomplete("The upload has not arrived: POST the archive to its url first")
    try:
        return inspect_archive(objects.open_stream(upload["key"])).files
    except InvalidArchive as error:
        raise ValidationFailed(
            {"upload_id": [f"Invalid archive ({error.rule}): {error.message}"]}
        ) from None


def _git_files(body: DetectRequest) -> dict[str, bytes]:
    assert body.git is not None
    try:
        repositories.check(body.git.repository, get_settings().stage)
        url = repositories.clone_url(body.git.repository)
        resolved = remote.resolve(url, body.git.ref)
    except (repositories.BadRepository, BadRef) as error:
        raise ValidationFailed({"git": [str(error)]}) from None
    except (remote.NoSuchRef, remote.Unreachable) as error:
        # A well-formed source that can't be read is not found, as a private repository
        # is for anyone who may not see it; the message says which.
        raise NotFound("Repository or ref", redact(str(error))) from None
    with tempfile.TemporaryDirectory(prefix="detect-") as work:
        source = Path(work) / "source"
        deadline = time.monotonic() + CLONE_TIMEOUT_S
        try:
            checkout(url, resolved.sha, source, deadline, threading.Event())
        except CloneFailed as error:
            raise ValidationFailed({"git": [error.message]}) from None
        return from_directory(source)
