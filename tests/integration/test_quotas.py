"""Quotas (contract section 3), usage and entitlements, through the HTTP surface and the
quota API the deployment pipeline calls, on moto."""

import pytest

from tests.conftest import Api


def test_project_count_limit_is_403_and_a_delete_frees_a_slot(api):
    # Given a free workspace with its 3 projects
    ids = [api.post("/v1/projects", {"name": f"App {i}"}).json["data"]["id"] for i in range(3)]

    # When it creates a fourth
    refused = api.post("/v1/projects", {"name": "App 3"})

    # Then it is refused, and nothing was written
    assert refused.status_code == 403
    assert refused.json["error"]["code"] == "feature_limit_reached"
    assert refused.json["error"]["details"] == {"feature": "projects", "limit": 3, "used": 3}
    assert len(api.get("/v1/projects").json["data"]) == 3

    # And once one is deleted there is room again
    assert api.delete(f"/v1/projects/{ids[0]}").status_code == 204
    assert api.post("/v1/projects", {"name": "App 3"}).status_code == 201
    assert api.get("/v1/usage").json["data"]["metrics"]["projects"]["used"] == 3


def test_a_refused_create_does_not_use_a_slot(api):
    assert api.post("/v1/projects", {"name": "Web"}).status_code == 201
    assert api.post("/v1/projects", {"name": "Web"}).status_code == 409
    projects = api.get("/v1/usage").json["data"]["metrics"]["projects"]
    assert projects == {
        "used": 1,
        "limit": 3,
        "available": 2,
        "percentage": 33.3,
        "reset_at": None,
    }


def test_enterprise_projects_are_unlimited(client, make_workspace):
    enterprise = Api(client, make_workspace("Big", tier="enterprise")[1])
    assert enterprise.post("/v1/projects", {"name": "One"}).status_code == 201
    projects = enterprise.get("/v1/usage").json["data"]["metrics"]["projects"]
    assert projects == {
        "used": 1,
        "limit": None,
        "available": None,
        "percentage": None,
        "reset_at": None,
    }


def test_deployments_per_day_are_reserved_atomically_then_429(api, make_workspace):
    from chalicelib.core.errors import QuotaExceeded
    from chalicelib.limits import quotas

    workspace_id, _ = make_workspace("Deployer")
    for _ in range(20):
        quotas.reserve_deployment(workspace_id, "free")
    with pytest.raises(QuotaExceeded) as refused:
        quotas.reserve_deployment(workspace_id, "free")
    error = refused.value
    assert (error.status, error.code) == (429, "quota_exceeded")
    assert error.details == {"feature": "deployments", "limit": 20, "used": 20}
    assert 1 <= int(error.headers["Retry-After"]) <= 86_400

    # An upgrade gives room at once, and another workspace is not affected
    quotas.reserve_deployment(workspace_id, "starter")
    quotas.reserve_deployment(
        api.post("/v1/projects", {"name": "x"}).json["data"]["workspace_id"], "free"
    )


def test_build_minutes_are_recorded_and_checked(client, make_workspace):
    from chalicelib.core.errors import QuotaExceeded
    from chalicelib.limits import quotas

    workspace_id, key = make_workspace("Builder")
    api = Api(client, key)
    quotas.check_build_minutes(workspace_id, "free")
    quotas.record_build_seconds(workspace_id, 99 * 60 + 30)
    quotas.check_build_minutes(workspace_id, "free")
    quotas.record_build_seconds(workspace_id, 30.5)

    with pytest.raises(QuotaExceeded) as refused:
        quotas.check_build_minutes(workspace_id, "free")
    assert refused.value.details == {"feature": "build_minutes", "limit": 100, "used": 100.01}
    quotas.check_build_minutes(workspace_id, "starter")
    quotas.check_build_minutes(workspace_id, "enterprise")

    minutes = api.get("/v1/usage").json["data"]["metrics"]["build_minutes"]
    assert minutes["used"] == 100.01
    assert minutes["available"] == 0
    assert minutes["percentage"] == 100.0
    check = api.get("/v1/entitlements/check?feature=build_minutes").json["data"]
    assert check == {
        "allowed": False,
        "feature": "build_minutes",
        "current_usage": 100.01,
        "limit": 100,
        "available": 0,
        "reason": "quota_exceeded",
    }


def test_usage_reports_every_metric_of_the_period(client, make_workspace):
    from chalicelib.identity.keys import issue
    from chalicelib.limits import quotas

    # Given a workspace with some of everything
    workspace_id, key = make_workspace("Metered")
    api = Api(client, key)
    api.post("/v1/projects", {"name": "Site"})
    for _ in range(5):
        quotas.reserve_deployment(workspace_id, "free")
    quotas.record_build_seconds(workspace_id, 90)
    issue(name="ci", scopes=["projects:read"], workspace_id=workspace_id)
    issue(name="old", scopes=["*"], workspace_id=workspace_id, expires_at="2020-01-01T00:00:00Z")

    # When its usage is read
    response = api.get("/v1/usage")

    # Then every metric is there with its limit and reset
    assert response.status_code == 200
    usage = response.json["data"]
    assert usage["workspace_id"] == workspace_id and usage["tier"] == "free"
    start, end = usage["period"]["start"], usage["period"]["end"]
    assert start.endswith("-01T00:00:00Z") and end.endswith("-01T00:00:00Z") and start < end
    metrics = usage["metrics"]
    assert metrics["api_calls"] == {
        "used": 2,
        "limit": None,
        "available": None,
        "percentage": None,
        "reset_at": end,
    }
    assert metrics["deployments"]["used"] == 5
    assert metrics["deployments"]["limit"] == 20
    assert metrics["deployments"]["available"] == 15
    assert metrics["deployments"]["percentage"] == 25.0
    assert metrics["deployments"]["reset_at"].endswith("T00:00:00Z")
    assert metrics["deployments"]["reset_at"] <= end
    assert metrics["build_minutes"]["used"] == 1.5
    assert metrics["build_minutes"]["reset_at"] == end
    assert metrics["projects"]["used"] == 1
    # the initial key and "ci"; the expired one no longer counts
    assert metrics["api_keys"] == {
        "used": 2,
        "limit": 5,
        "available": 3,
        "percentage": 40.0,
        "reset_at": None,
    }


def test_usage_counts_api_keys_as_the_limit_does_through_a_rotation(api):
    # Given four active keys, one of them rotated: its old secret works during the grace,
    # but the slot is its successor's
    first = api.post("/v1/api-keys", {"name": "ci", "scopes": ["projects:read"]}).json["data"]
    for name in ("a", "b"):
        api.post("/v1/api-keys", {"name": name, "scopes": ["projects:read"]})
    api.post(f"/v1/api-keys/{first['id']}/rotate", {"grace_period_hours": 1})

    # When usage and the entitlement check are read
    metric = api.get("/v1/usage").json["data"]["metrics"]["api_keys"]
    advice = api.get("/v1/entitlements/check?feature=api_keys").json["data"]

    # Then both say what a creation then finds: one slot left
    assert metric["used"] == 4 and metric["available"] == 1
    assert advice["allowed"] is True and advice["current_usage"] == 4
    assert api.post("/v1/api-keys", {"name": "c", "scopes": ["*"]}).status_code == 201
    full = api.get("/v1/entitlements/check?feature=api_keys").json["data"]
    assert full["allowed"] is False and full["reason"] == "feature_limit_reached"
    assert api.post("/v1/api-keys", {"name": "d", "scopes": ["*"]}).status_code == 403


def test_entitlement_checks(api):
    api.post("/v1/projects", {"name": "Site"})
    three = api.get("/v1/entitlements/check?feature=projects&quantity=2").json["data"]
    assert three == {
        "allowed": True,
        "feature": "projects",
        "current_usage": 1,
        "limit": 3,
        "available": 2,
        "reason": None,
    }
    four = api.get("/v1/entitlements/check?feature=projects&quantity=3").json["data"]
    assert four["allowed"] is False and four["reason"] == "feature_limit_reached"
    deployments = api.get("/v1/entitlements/check?feature=deployments").json["data"]
    assert deployments["allowed"] is True and deployments["available"] == 20
    calls = api.get("/v1/entitlements/check?feature=api_calls&quantity=1000000").json["data"]
    assert calls["allowed"] is True and calls["limit"] is None

    for query in (
        "",
        "?feature=bogus",
        "?feature=projects&quantity=0",
        "?feature=projects&quantity=x",
    ):
        bad = api.get("/v1/entitlements/check" + query)
        assert bad.status_code == 400, query
        assert bad.json["error"]["code"] == "bad_request"


def test_usage_needs_its_scope_and_is_per_workspace(client, api, make_workspace):
    from chalicelib.identity.keys import issue

    workspace_id = api.post("/v1/projects", {"name": "Site"}).json["data"]["workspace_id"]
    reader = Api(client, issue(name="r", scopes=["projects:read"], workspace_id=workspace_id)[1])
    denied = reader.get("/v1/usage")
    assert denied.status_code == 403
    assert denied.json["error"]["details"] == {"required_scope": "usage:read"}
    assert reader.get("/v1/entitlements/check?feature=projects").status_code == 403

    other = Api(client, make_workspace("Other")[1])
    metrics = other.get("/v1/usage").json["data"]["metrics"]
    assert metrics["projects"]["used"] == 0
    assert metrics["api_calls"]["used"] == 1
