"""Where the laptop keeps its data when nothing is configured, and where its store is."""

import os

from core.adapters.sqlite.database import path_from_url
from core.config import Settings


def test_the_store_default_lives_in_the_data_dir():
    settings = Settings.from_env({"IMGGO_FN_DATA_DIR": "/srv/imggo data%"})
    assert path_from_url(settings.store_url) == "/srv/imggo data%/imggo-fn.db"


def test_a_relative_data_dir_is_made_absolute_once(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = Settings.from_env({"IMGGO_FN_DATA_DIR": "out/demo"})
    assert path_from_url(settings.store_url) == str(tmp_path / "out" / "demo" / "imggo-fn.db")


def test_without_a_data_dir_it_is_the_users_data_directory():
    settings = Settings.from_env({"XDG_DATA_HOME": "/home/me/.data"})
    assert settings.data_dir == "/home/me/.data/imggo-fn"
    assert path_from_url(settings.store_url) == "/home/me/.data/imggo-fn/imggo-fn.db"
    home = Settings.from_env({})
    assert home.data_dir == os.path.join(os.path.expanduser("~"), ".local", "share", "imggo-fn")


def test_an_explicit_store_url_wins():
    settings = Settings.from_env({"IMGGO_FN_DATA_DIR": "/d", "IMGGO_FN_STORE_URL": "memory://"})
    assert settings.store_url == "memory://" and settings.data_dir == "/d"
