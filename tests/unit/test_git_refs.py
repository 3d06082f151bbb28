"""The git rules that need no network: refs git may be given, redaction, the match key a
push is found by, and the smart-HTTP ref advertisement as git itself writes it."""

from __future__ import annotations

import subprocess

import pytest

from chalicelib.git import repository
from chalicelib.git.refs import BadRef, check_ref, redact
from chalicelib.git.remote import parse_advertisement
from tests.git_support import commit, git, make_repo


@pytest.mark.parametrize("ref", ["main", "feature/x-1", "v1.2.3", "refs/heads/main", "a@b"])
def test_ordinary_refs_pass(ref):
    assert check_ref(ref) == ref


@pytest.mark.parametrize(
    "ref",
    [
        "",
        "-x",
        "--upload-pack=evil",
        "a..b",
        "a;b",
        "a b",
        "$(x)",
        "a`b`",
        "/a",
        "a/",
        "a.lock",
        "a/.hidden",
        "a//b",
        "x@{1}",
        "a\nb",
        "a|b",
        "a>b",
    ],
)
def test_options_paths_and_shell_are_refused(ref):
    with pytest.raises(BadRef):
        check_ref(ref)


def test_credentials_are_redacted_from_any_text():
    text = "fatal: unable to access 'https://bot:t0ken@github.com/a/b.git/': 403"
    assert redact(text) == "fatal: unable to access 'https://***@github.com/a/b.git/': 403"


def test_a_repository_and_its_clone_urls_share_one_match_key():
    keys = {
        repository.match_key(name)
        for name in (
            "Acme/Web",
            "https://github.com/acme/web.git",
            "https://bot:secret@github.com/acme/web",
        )
    }
    assert keys == {"github.com/acme/web"}
    assert repository.match_key("file:///srv/web.git") == "file:///srv/web"


def test_file_urls_are_for_the_local_stack_only():
    assert repository.check("file:///srv/web", "local") == "file:///srv/web"
    with pytest.raises(repository.BadRepository):
        repository.check("file:///srv/web", "prod")


def test_the_advertisement_git_serves_over_http_is_read_as_git_wrote_it(tmp_path):
    repo = make_repo(tmp_path / "r", {"a": "1"})
    main = git(repo, "rev-parse", "HEAD")
    feature = commit(repo, {"a": "2"}, "two", branch="feature")
    git(repo, "tag", "-a", "v1", "-m", "release", main)
    advertised = subprocess.run(
        ["git", "upload-pack", "--stateless-rpc", "--advertise-refs", str(repo)],
        capture_output=True,
        check=True,
        env={"PATH": "/usr/bin:/bin", "GIT_PROTOCOL": ""},
    ).stdout
    body = b"001e# service=git-upload-pack\n0000" + advertised

    refs = parse_advertisement(body)

    assert refs["refs/heads/main"] == main
    assert refs["refs/heads/feature"] == feature
    assert refs["refs/tags/v1^{}"] == main
