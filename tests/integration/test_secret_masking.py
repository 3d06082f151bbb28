"""Secrets never reach a log: a build that prints its environment, encodes a secret or
writes one in two pieces, a failure message that quotes one; on moto with the local pump
(the builds run for real). What is stored is checked, through the API that reads it."""

from __future__ import annotations

import base64
import json
from urllib.parse import quote

from tests.integration.conftest import deploy_archive, log_lines, wait_for
from tests.pipeline_support import targz

TOKEN = "tok_9f8e7d6c5b4a"
SITE = targz({"index.html": "<h1>app</h1>"})


def set_env(api, project, **vars):
    response = api.put(f"/v1/projects/{project['id']}/env", {"vars": vars})
    assert response.status_code == 200, response.json


def build_with(api, project, command):
    patch = {"build": {"build_command": command}}
    assert api.patch(f"/v1/projects/{project['id']}", patch).status_code == 200
    deployment = deploy_archive(api, project["id"], SITE)
    return deployment, wait_for(api, deployment, ("built", "failed"))


def test_a_build_that_prints_its_environment_and_encodes_a_secret_logs_only_stars(
    api, project, pump
):
    # Given a secret, a 3-character and a 4-character secret, a plain variable
    set_env(
        api,
        project,
        API_TOKEN={"value": TOKEN, "secret": True},
        PIN={"value": "xyz", "secret": True},
        CODE={"value": "k9Zq", "secret": True},
        MODE={"value": "production-mode"},
    )
    b64 = base64.b64encode(TOKEN.encode()).decode()
    in_b64 = base64.b64encode(f"user:{TOKEN}".encode()).decode()
    # When the build prints env, the token encoded three ways, and the token in two writes
    command = (
        "env; "
        f"echo b64={b64}; echo urlsafe=$(printf %s \"$API_TOKEN\" | base64 | tr '+/' '-_'); "
        f"echo url={quote(TOKEN + '&=/', safe='')}; echo basic={in_b64}; "
        f"printf 'split={TOKEN[:6]}'; sleep 0.3; printf '{TOKEN[6:]}\\n'"
    )
    deployment, built = build_with(api, project, command)

    # Then the stored log has stars where the secret was, in every form
    assert built["status"] == "built", built
    text = "\n".join(line["message"] for line in log_lines(api, deployment))
    assert TOKEN not in text and b64 not in text and b64.rstrip("=") not in text
    assert "API_TOKEN=***" in text and "CODE=***" in text and "k9Zq" not in text
    assert "b64=***" in text and "urlsafe=***" in text and "split=***" in text
    assert "url=***" in text and quote(TOKEN, safe="") not in text
    # "user:" puts the token two bytes into a base64 group: its encoding there is masked too
    assert in_b64 not in text and "***" in text.split("basic=")[1].splitlines()[0]
    # and a secret of 3 characters, or a plain variable, is left as it is
    assert "PIN=xyz" in text
    assert "MODE=production-mode" in text


def test_a_secret_that_is_a_common_word_is_masked_wherever_it_appears(api, project, pump):
    set_env(api, project, WORD={"value": "Build", "secret": True})

    deployment, built = build_with(api, project, "echo Build the site; echo done")

    assert built["status"] == "built"
    messages = [line["message"] for line in log_lines(api, deployment)]
    assert "*** the site" in messages and "done" in messages
    assert not any("Build" in message for message in messages)
    assert "***ing (local)" in messages


def test_an_error_message_that_quotes_a_secret_is_masked(api, project, pump):
    set_env(api, project, API_TOKEN={"value": TOKEN, "secret": True})

    deployment, failed = build_with(api, project, f"test x = {TOKEN} || exit 3")

    assert failed["status"] == "failed"
    assert (
        failed["error_message"] == "the build command `test x = *** || exit 3` exited with code 3"
    )
    listed = api.get(f"/v1/projects/{project['id']}/deployments").json["data"]
    assert TOKEN not in json.dumps(listed)
    assert TOKEN not in json.dumps(log_lines(api, deployment))


def test_an_env_snapshot_written_before_secret_keys_were_kept_is_still_read(api, project):
    from chalicelib.aws import kms, objects
    from chalicelib.deployments import env as deployment_env
    from chalicelib.deployments.env import mask_for_deployment

    key = f"env/{project['id']}/dep_old.sealed"
    sealed = kms.seal(json.dumps({"A": "1"}).encode(), {"project_id": project["id"]})
    objects.put_bytes(key, sealed.encode())
    item = {"id": "dep_old", "project_id": project["id"], "env_key": key}

    assert deployment_env.env_of(item) == {"A": "1"}
    assert deployment_env.snapshot_of(item) == ({"A": "1"}, [])
    assert mask_for_deployment(item)("A=1") == "A=1"


def test_mask_for_deployment_masks_by_id_for_writers_outside_the_log(api, project, pump):
    from chalicelib.deployments.env import mask_for_deployment

    set_env(api, project, API_TOKEN={"value": TOKEN, "secret": True})
    deployment, _ = build_with(api, project, "true")

    mask = mask_for_deployment(deployment["id"])

    payload = f'{{"error_message": "failed with {TOKEN}"}}'
    assert mask(payload) == '{"error_message": "failed with ***"}'
    assert mask_for_deployment("dep_unknown")(TOKEN) == TOKEN


def test_a_deployment_snapshot_is_opened_once_per_process_and_read_again_by_another(
    api, project, pump, monkeypatch
):
    """The process that seals a deployment's env keeps it opened: its build and its log
    writers decrypt nothing more. Another process (here: the cache dropped) reads the
    sealed snapshot from S3 and KMS, to the same env and the same masking."""
    from chalicelib.aws.clients import client
    from chalicelib.deployments import env as deployment_env
    from chalicelib.deployments.masking import RecentCache
    from chalicelib.store import deployments as store

    set_env(api, project, API_TOKEN={"value": TOKEN, "secret": True}, PLAIN={"value": "p"})
    decrypts = []

    def count(**_):
        decrypts.append(1)

    kms = client("kms")
    kms.meta.events.register("before-call.kms.Decrypt", count)
    try:
        deployment, built = build_with(api, project, "echo $API_TOKEN $PLAIN")
    finally:
        kms.meta.events.unregister("before-call.kms.Decrypt", count)
    assert built["status"] == "built", built
    assert "*** p" in [line["message"] for line in log_lines(api, deployment)]
    # The project's secret is decrypted once, to seal the deployment's snapshot.
    assert len(decrypts) == 1

    monkeypatch.setattr(deployment_env, "_opened", RecentCache())
    monkeypatch.setattr(deployment_env, "_maskers", RecentCache())
    item = {"id": deployment["id"], "project_id": project["id"]}
    assert deployment_env.masker_of(item)(f"x {TOKEN} y") == "x *** y"
    stored = store.get(project["id"], deployment["id"])
    assert deployment_env.snapshot_of(stored) == ({"API_TOKEN": TOKEN, "PLAIN": "p"}, ["API_TOKEN"])
