"""Fixtures of the pipeline's integration tests (moto's mock_aws via tests/conftest.py)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def pipeline_environment(monkeypatch, tmp_path):
    """Local engines keep their state in the test's own directory; cached queue URLs and
    depths of an earlier test's moto are forgotten."""
    monkeypatch.setenv("SHIPYARD_STATE_DIR", str(tmp_path / "state"))
    from chalicelib.aws import queues

    queues.forget()
    yield
    queues.forget()


@pytest.fixture
def project(api):
    return api.post("/v1/projects", {"name": "Shop"}).json["data"]
