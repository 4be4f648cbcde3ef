"""Settings through Dask config's bytenite-nb section, and the BYTENITE_NB_* aliases.

Dask reads its YAML files and DASK_* variables when it is imported, so those
cases run in a fresh interpreter whose HOME, DASK_ROOT_CONFIG and DASK_CONFIG
point at folders of the test's own: no file of this machine leaks in.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import dask
import pytest

from bytenite_nb import config

SHOW = """
import json
import platformdirs
from bytenite_nb import config
print(json.dumps({
    "user_data_dir": platformdirs.user_data_dir("bytenite-nb"),
    "home": config.home(), "staging": config.staging_url(), "records": config.records_url(),
    "templates": config.template_dirs(), "apps": config.app_dirs(), "task_dir": config.task_dir(),
    "engine": config.container_engine(), "pull": config.container_pull(), "options": config.container_options(),
    "display": config.display(), "cluster": config.cluster(), "workers": config.local_workers(),
    "idle_timeout": config.idle_timeout(),
}))
"""


def settings_in_fresh_process(tmp_path, env: dict[str, str] | None = None, files: dict[str, str] | None = None) -> dict:
    """What bytenite_nb.config answers in a new interpreter with only ``env``
    (beyond PATH and PYTHONPATH) and the YAML ``files`` in its DASK_CONFIG folder;
    ``user_data_dir`` is where platformdirs puts a user's data there."""
    root = tmp_path / "fresh"
    for folder in ("home", "etc-dask", "dask-config"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    for name, text in (files or {}).items():
        (root / "dask-config" / name).write_text(text)
    base = {k: v for k, v in os.environ.items() if k in ("PATH", "PYTHONPATH", "LANG", "SYSTEMROOT")}
    base.update(HOME=str(root / "home"), DASK_ROOT_CONFIG=str(root / "etc-dask"),
                DASK_CONFIG=str(root / "dask-config"), XDG_DATA_HOME=str(root / "home" / ".local" / "share"))
    base.update(env or {})
    proc = subprocess.run([sys.executable, "-c", SHOW], env=base, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def test_defaults_come_from_the_shipped_yaml(tmp_path):
    got = settings_in_fresh_process(tmp_path)
    home = got.pop("user_data_dir")
    assert home.startswith(str(tmp_path / "fresh" / "home"))  # the fresh HOME's, not this machine's
    assert got == {
        "home": home, "staging": "file://" + home + "/staging", "records": "file://" + home + "/records",
        "templates": [home + "/templates"], "apps": [], "task_dir": None, "engine": None, "pull": "missing",
        "options": [], "display": "auto", "cluster": None, "workers": None, "idle_timeout": "1h",
    }


def test_the_shipped_yaml_holds_every_aliased_setting():
    # The table of aliases and the shipped defaults cannot drift apart.
    section = config.defaults()["bytenite-nb"]
    for key in config.ALIASES:
        node = section
        for part in key.split("."):
            assert part in node, f"bytenite-nb.{key} has an alias but no default in bytenite-nb.yaml"
            node = node[part]


def test_dask_environment_variables_set_settings(tmp_path):
    got = settings_in_fresh_process(tmp_path, env={
        "DASK_BYTENITE_NB__HOME": str(tmp_path / "h"),
        "DASK_BYTENITE_NB__STAGING": "s3://bucket/staging",
        "DASK_BYTENITE_NB__TEMPLATES": '["/t1", "/t2"]',
        "DASK_BYTENITE_NB__CONTAINER__ENGINE": "docker",
        "DASK_BYTENITE_NB__CONTAINER__OPTIONS": '["--ulimit", "nofile=1024:1024"]',
        "DASK_BYTENITE_NB__LOCAL_CLUSTER__WORKERS": "3",
        "DASK_BYTENITE_NB__CLUSTER": "sync",
    })
    assert got["home"] == str(tmp_path / "h")
    assert got["staging"] == "s3://bucket/staging"
    assert got["templates"] == ["/t1", "/t2", str(tmp_path / "h" / "templates")]
    assert got["engine"] == "docker"
    assert got["options"] == ["--ulimit", "nofile=1024:1024"]
    assert (got["workers"], got["cluster"]) == (3, "sync")
    assert got["pull"] == "missing"  # untouched settings keep their defaults


def test_a_yaml_file_in_the_dask_config_folder_sets_settings(tmp_path):
    got = settings_in_fresh_process(tmp_path, files={"bytenite-nb.yaml": f"""
bytenite-nb:
  home: {tmp_path / 'from-yaml'}
  apps: [/apps/one, /apps/two]
  container:
    pull: never
    options: --network none
  local-cluster:
    idle-timeout: null
"""})
    assert got["home"] == str(tmp_path / "from-yaml")
    assert got["apps"] == ["/apps/one", "/apps/two"]
    assert got["pull"] == "never"
    assert got["options"] == ["--network", "none"]  # one string is split like a shell would
    assert got["idle_timeout"] is None
    assert got["engine"] is None  # not in the file: the default


def test_a_yaml_file_in_the_users_dask_folder_is_read(tmp_path):
    user_dask = tmp_path / "fresh" / "home" / ".config" / "dask"
    user_dask.mkdir(parents=True)
    (user_dask / "bytenite-nb.yaml").write_text("bytenite-nb:\n  records: s3://bucket/records/\n")
    assert settings_in_fresh_process(tmp_path)["records"] == "s3://bucket/records"


def test_the_old_variables_win_over_dask_config(tmp_path):
    got = settings_in_fresh_process(
        tmp_path,
        env={"BYTENITE_NB_HOME": str(tmp_path / "alias"), "DASK_BYTENITE_NB__HOME": str(tmp_path / "dask"),
             "BYTENITE_NB_APPS": os.pathsep.join(["/a", "/b"]), "BYTENITE_NB_CONTAINER_PULL": "always",
             "BYTENITE_NB_CONTAINER_OPTIONS": "--ulimit nproc=1000:1000", "BYTENITE_NB_DISPLAY": "Text"},
        files={"bytenite-nb.yaml": "bytenite-nb:\n  container:\n    pull: never\n"})
    assert got["home"] == str(tmp_path / "alias")
    assert got["apps"] == ["/a", "/b"]
    assert got["pull"] == "always"
    assert got["options"] == ["--ulimit", "nproc=1000:1000"]
    assert got["display"] == "text"


def test_an_empty_alias_counts_as_unset(monkeypatch, tmp_path):
    monkeypatch.setenv("BYTENITE_NB_STAGING", "")
    with dask.config.set({"bytenite-nb.staging": "memory://staging"}):
        assert config.staging_url() == "memory://staging"
    monkeypatch.setenv("BYTENITE_NB_STAGING", "memory://alias")
    with dask.config.set({"bytenite-nb.staging": "memory://staging"}):
        assert config.staging_url() == "memory://alias"
        assert config.source("staging") == "BYTENITE_NB_STAGING"
    monkeypatch.delenv("BYTENITE_NB_STAGING")
    assert config.source("staging") == "Dask config bytenite-nb.staging"


def test_dask_config_set_in_code_is_read_at_once(monkeypatch, tmp_path):
    monkeypatch.delenv("BYTENITE_NB_HOME")
    with dask.config.set({"bytenite-nb.home": str(tmp_path / "set-in-code"), "bytenite-nb.templates": "/x"}):
        assert config.home() == str(tmp_path / "set-in-code")
        assert config.store_path() == str(tmp_path / "set-in-code" / "jobs.sqlite")
        assert config.template_dirs(str(tmp_path)) == [str(tmp_path / "templates"), str(tmp_path), "/x",
                                                       str(tmp_path / "set-in-code" / "templates")]


def test_a_bad_pull_setting_names_where_it_came_from(monkeypatch):
    from bytenite_nb.apps.container import pull_policy
    from bytenite_nb.exceptions import ContainerError

    monkeypatch.delenv("BYTENITE_NB_CONTAINER_PULL", raising=False)
    with dask.config.set({"bytenite-nb.container.pull": "sometimes"}):
        with pytest.raises(ContainerError, match="Dask config bytenite-nb.container.pull: expected one of"):
            pull_policy()
    monkeypatch.setenv("BYTENITE_NB_CONTAINER_PULL", "often")
    with pytest.raises(ContainerError, match="BYTENITE_NB_CONTAINER_PULL: expected one of .* got 'often'"):
        pull_policy()


def test_app_folders_from_config_are_searched_for_tags(monkeypatch, tmp_path):
    from bytenite_nb.folders import search_dirs

    monkeypatch.delenv("BYTENITE_NB_APPS", raising=False)
    with dask.config.set({"bytenite-nb.apps": [str(tmp_path / "shared-apps")]}):
        assert str(tmp_path / "shared-apps") in search_dirs(str(tmp_path / "job"))
    monkeypatch.setenv("BYTENITE_NB_APPS", str(tmp_path / "alias-apps"))
    with dask.config.set({"bytenite-nb.apps": [str(tmp_path / "shared-apps")]}):
        dirs = search_dirs(str(tmp_path / "job"))
    assert str(tmp_path / "alias-apps") in dirs and str(tmp_path / "shared-apps") not in dirs


def test_defaults_survive_a_config_block_entered_before_they_were_read(monkeypatch):
    import dask.config

    monkeypatch.delenv("BYTENITE_NB_CONTAINER_PULL", raising=False)
    monkeypatch.setattr(config, "_loaded", False)
    saved = dask.config.config.pop(config.SECTION, None)
    try:
        with dask.config.set({"bytenite-nb.container.pull": "always"}):
            assert config.get("container.pull") == "always"
        assert config.get("container.pull") == "missing"  # the shipped default, back
    finally:
        if saved is not None:
            dask.config.config[config.SECTION] = saved
