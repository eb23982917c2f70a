"""Config: the shipped examples load; every mistake names the file and the field."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from yuqing.config import ConfigError, load_config

from .conftest import REPO, SECRETS


def _copy_config(tmp_path: Path) -> Path:
    target = tmp_path / "config"
    shutil.copytree(REPO / "config", target)
    return target


def test_shipped_examples_load(config):
    assert config.hospital.name == "江城市第一人民医院"
    assert [rule.level for rule in config.plan.levels] == ["IV", "III", "II", "I"]
    assert config.channels.email.password.get_secret_value() == "s3cret-smtp"
    assert "s3cret-smtp" not in repr(config)


def test_missing_env_var_is_named(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_config(REPO / "config", env={})
    text = str(err.value)
    assert "channels.yaml: email.password: environment variable YUQING_SMTP_PASSWORD is not set" in text


def test_literal_secret_is_refused(tmp_path):
    cfg_dir = _copy_config(tmp_path)
    path = cfg_dir / "channels.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("${YUQING_SMTP_PASSWORD}", "hunter2"), encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(cfg_dir, env=SECRETS)
    assert "channels.yaml: email.password: secrets must come from the environment" in str(err.value)


def test_bad_field_names_file_field_and_expectation(tmp_path):
    cfg_dir = _copy_config(tmp_path)
    path = cfg_dir / "plan.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("ack_minutes: 30", "ack_minutes: soon"), encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(cfg_dir, env=SECRETS)
    assert "plan.yaml: levels.1.ack_minutes: Input should be a valid integer" in str(err.value)
    assert "'soon'" in str(err.value)


def test_unknown_recipient_in_plan(tmp_path):
    cfg_dir = _copy_config(tmp_path)
    path = cfg_dir / "plan.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("escalate_to: [president]\n    repeat_minutes: 15",
                                                             "escalate_to: [nobody]\n    repeat_minutes: 15"), encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(cfg_dir, env=SECRETS)
    assert "plan.yaml: levels[2].escalate_to: unknown recipient or group 'nobody'" in str(err.value)


def test_yaml_syntax_error_names_line(tmp_path):
    cfg_dir = _copy_config(tmp_path)
    (cfg_dir / "sources.yaml").write_text("sources:\n  - id: a\n   kind: [\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(cfg_dir, env=SECRETS)
    assert "sources.yaml line" in str(err.value)


def test_search_source_needs_query_placeholder(tmp_path):
    cfg_dir = _copy_config(tmp_path)
    (cfg_dir / "sources.yaml").write_text(
        "sources:\n  - id: s\n    name: s\n    kind: search\n    url: http://127.0.0.1/search\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(cfg_dir, env=SECRETS)
    assert "sources.yaml: sources.0: Value error, a search source's url must contain {query}" in str(err.value)
