"""`dvc push` to a network remote and `dvc pull` back: a real WebDAV server on 127.0.0.1, with a password; and a
file corrupted in the remote is refused, not checked out."""

from __future__ import annotations

import hashlib
import secrets
import subprocess
import sys
from collections.abc import Iterator

import pytest
import yaml

from tests.repro import copy_project, delete_cache_and_outputs, output_digests, project_env, run, stale_stages
from tests.servers import free_port, serving


@pytest.fixture
def webdav(tmp_path) -> Iterator[dict]:
    """A WsgiDAV server (cheroot) sharing a folder to one user with a random password; DVC stores into its empty
    rollgen/ folder (the remote's root must exist, as on any server).

    The password always begins with "-", as a random one sometimes does: a command line that reads it as an
    option fails every run, not one run in 64."""
    port, user, password = free_port(), "rollgen", "-" + secrets.token_urlsafe(16)
    shared = tmp_path / "webdav"
    (shared / "rollgen").mkdir(parents=True)
    config = {
        "host": "127.0.0.1",
        "port": port,
        "server": "cheroot",
        "provider_mapping": {"/": str(shared)},
        "http_authenticator": {"accept_basic": True, "accept_digest": False, "default_to_digest": False},
        "simple_dc": {"user_mapping": {"*": {user: {"password": password}}}},
        "verbose": 1,
    }
    config_file = tmp_path / "wsgidav.yaml"
    config_file.write_text(yaml.safe_dump(config))
    command = [sys.executable, "-m", "wsgidav.server.server_cli", "--config", str(config_file)]
    with serving(command, tmp_path / "wsgidav.log", ready=port):
        yield {"url": f"webdav://127.0.0.1:{port}/rollgen", "user": user, "password": password, "folder": shared}


@pytest.mark.slow
def test_push_to_webdav_and_pull_back_restores_every_output(tiny_repro, webdav, tmp_path):
    project = copy_project(tiny_repro, tmp_path / "project")
    before = output_digests(project)
    run(["dvc", "remote", "add", "webdav", webdav["url"]], project)
    run(["dvc", "remote", "modify", "--local", "webdav", "user", webdav["user"]], project)
    # `--` ends dvc's options, so a value beginning with "-" is the value, as the README shows.
    run(["dvc", "remote", "modify", "--local", "webdav", "password", "--", webdav["password"]], project)
    assert webdav["password"].startswith("-")
    assert f"password = {webdav['password']}" in (project / ".dvc/config.local").read_text()
    assert webdav["password"] not in (project / ".dvc/config").read_text()
    run(["git", "check-ignore", "-q", ".dvc/config.local"], project)  # the password never reaches git

    run(["dvc", "push", "-r", "webdav"], project)
    stored = [path for path in (webdav["folder"] / "rollgen").rglob("*") if path.is_file()]
    assert len(stored) > 10

    delete_cache_and_outputs(project)
    run(["dvc", "pull", "-r", "webdav"], project)
    assert output_digests(project) == before  # every output back, byte for byte
    assert stale_stages(project) == {}


@pytest.mark.slow
def test_webdav_refuses_a_wrong_password(webdav, tmp_path):
    """The round trip above proves the password is used, this that it is needed."""
    project = tmp_path / "empty"
    project.mkdir()
    run(["git", "init", "-q"], project)
    run(["dvc", "init", "-q"], project)
    run(["dvc", "remote", "add", "-d", "webdav", webdav["url"]], project)
    run(["dvc", "remote", "modify", "--local", "webdav", "user", webdav["user"]], project)
    run(["dvc", "remote", "modify", "--local", "webdav", "password", "--", "-not-the-password"], project)
    (project / "a.txt").write_text("a")
    run(["dvc", "add", "a.txt"], project)
    with pytest.raises(AssertionError, match="401|nauthori"):
        run(["dvc", "push"], project)
    assert not any((webdav["folder"] / "rollgen").iterdir())


@pytest.mark.slow
def test_a_file_corrupted_in_the_remote_is_refused_on_pull(tiny_repro, tmp_path):
    """The default remote verifies what it downloads (.dvc/config: verify = true). Without it, DVC checks the
    hash of a file output (model.keras) but not of the files inside a folder output: a flipped byte in a PNG
    came back without a word, and `dvc status` called it up to date."""
    project = copy_project(tiny_repro, tmp_path / "project")
    remote = tmp_path / "rollgen-dvc-remote"  # the default remote's url, ../../rollgen-dvc-remote from .dvc/
    run(["dvc", "push"], project)
    png = sorted((project / "data/interim/images").glob("*.png"))[0]
    md5 = hashlib.md5(png.read_bytes()).hexdigest()  # noqa: S324 - DVC's object name, not a safeguard
    stored = remote / "files" / "md5" / md5[:2] / md5[2:]
    data = bytearray(stored.read_bytes())
    data[len(data) // 2] ^= 0x01
    stored.chmod(0o644)  # DVC stores objects read-only
    stored.write_bytes(bytes(data))

    delete_cache_and_outputs(project)
    pull = subprocess.run(["dvc", "pull"], cwd=project, env=project_env(), capture_output=True, text=True,
                          timeout=600)  # fmt: skip
    assert pull.returncode != 0
    assert "data/interim/images" in pull.stderr  # "Checkout failed for following targets"
    assert not (project / "data/interim/images" / png.name).exists()  # nothing corrupt checked out
    assert (project / "models/model.keras").exists()  # the sound outputs are back
    assert stale_stages(project) != {}
