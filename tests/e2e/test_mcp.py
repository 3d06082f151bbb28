"""The hosted MCP server driven by the official SDK's client (`ClientSession` over
`streamable_http_client`) against the real local stack: an agent creates a project, deploys
a folder's files, waits, reads the log, deploys again and rolls back."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request

import httpx2
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client


async def _session_run(url: str, key: str, steps):
    headers = {"Authorization": f"Bearer {key}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=60) as http,
        streamable_http_client(url + "/v1/mcp", http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        return await steps(session)


def run(stack, steps, key=None):
    return asyncio.run(_session_run(stack.url, key or stack.key, steps))


async def wait_running(session, project_id, deployment_id):
    for _ in range(8):
        result = await session.call_tool(
            "wait_for_deployment",
            {"project_id": project_id, "deployment_id": deployment_id, "timeout_s": 15},
        )
        assert not result.is_error, result.content
        if result.structured_content["status"] not in ("pending", "building", "built", "deploying"):
            return result.structured_content
    raise AssertionError("the deployment never finished")


def page(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read().decode()


def test_an_agent_deploys_files_reads_logs_and_rolls_back(cli_stack):
    async def steps(session: ClientSession):
        tools = {tool.name for tool in (await session.list_tools()).tools}
        created = await session.call_tool("create_project", {"name": "Agent site"})
        project = created.structured_content
        deployed = []
        for version in ("one", "two"):
            result = await session.call_tool(
                "deploy_files",
                {"project_id": project["id"], "files": {"index.html": f"<p>version {version}</p>"}},
            )
            assert not result.is_error, result.content
            deployed.append(
                await wait_running(session, project["id"], result.structured_content["id"])
            )
        logs = await session.call_tool(
            "get_logs", {"project_id": project["id"], "deployment_id": deployed[0]["id"]}
        )
        rolled = await session.call_tool(
            "rollback", {"project_id": project["id"], "deployment_id": deployed[0]["id"]}
        )
        back = await wait_running(session, project["id"], rolled.structured_content["id"])
        listed = await session.call_tool("list_deployments", {"project_id": project["id"]})
        return tools, deployed, logs, rolled, back, listed

    tools, deployed, logs, rolled, back, listed = run(cli_stack, steps)

    assert "deploy_files" in tools and "rollback" in tools
    assert [d["status"] for d in deployed] == ["running", "running"]
    messages = [line["message"] for line in logs.structured_content["data"]]
    assert any("Health check passed" in message for message in messages)
    assert json.loads(logs.content[0].text) == logs.structured_content
    assert rolled.structured_content["source"]["type"] == "rollback"
    assert back["status"] == "running"
    assert "version one" in page(back["url"])
    statuses = [d["status"] for d in listed.structured_content["data"]]
    assert statuses == ["running", "stopped", "stopped"]


def test_a_rest_error_is_a_tool_error_and_a_missing_key_is_401(cli_stack):
    async def steps(session: ClientSession):
        return await session.call_tool(
            "get_deployment", {"project_id": "prj_nope", "deployment_id": "dep_nope"}
        )

    missing = run(cli_stack, steps)
    assert missing.is_error
    assert missing.structured_content["error"]["code"] == "not_found"

    request = urllib.request.Request(
        cli_stack.url + "/v1/mcp",
        data=json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        urllib.request.urlopen(request, timeout=10)
        raise AssertionError("answered without a key")
    except urllib.error.HTTPError as error:
        assert error.code == 401
        assert json.loads(error.read())["error"]["code"] == "unauthorized"
