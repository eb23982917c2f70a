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


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_every_problem_is_reported_in_one_run(tmp_path):
    """Schema, cross-references, categories, secrets, missing files and the cron: all at once."""
    cfg_dir = _copy_config(tmp_path)
    _edit(cfg_dir / "plan.yaml", "ack_minutes: 30", "ack_minutes: soon")
    _edit(cfg_dir / "plan.yaml", "risk_categories: [violence, bribery]", "risk_categories: [violence, bribes]")
    _edit(cfg_dir / "plan.yaml", "escalate_to: [president]\n    repeat_minutes: 15",
          "escalate_to: [nobody]\n    repeat_minutes: 15")
    _edit(cfg_dir / "channels.yaml", "${YUQING_SMTP_PASSWORD}", "hunter2")
    _edit(cfg_dir / "settings.yaml", '"0 8 * * mon"', '"0 8 * * monday-ish"')
    (cfg_dir / "sources.yaml").unlink()
    with pytest.raises(ConfigError) as err:
        load_config(cfg_dir, env=SECRETS)
    text = "\n".join(err.value.problems)
    assert "plan.yaml: levels.1.ack_minutes: Input should be a valid integer" in text
    assert "unknown risk category 'bribes'" in text
    assert "unknown recipient or group 'nobody'" in text
    assert "channels.yaml: email.password: secrets must come from the environment" in text
    assert "settings.yaml: schedules.digest_cron:" in text
    assert "sources.yaml: missing" in text
    assert "hunter2" not in text


def test_a_bad_digest_schedule_turns_off_the_digest_not_the_alerts(tmp_path):
    cfg_dir = _copy_config(tmp_path)
    _edit(cfg_dir / "settings.yaml", '"0 8 * * mon"', '"0 8 * * mondays"')
    cfg = load_config(cfg_dir, env=SECRETS)  # the daemon and tick still start
    assert len(cfg.degraded) == 1 and "digest_cron" in cfg.degraded[0] and "alerts are not affected" in cfg.degraded[0]
    from yuqing.app.daemon import build_scheduler, digest_due
    from yuqing.app.jobs import Runtime
    from yuqing.store import Store

    rt = Runtime(cfg=cfg, store=Store.migrated(f"sqlite:///{tmp_path / 'y.db'}"))
    assert digest_due(rt) is None
    jobs = {job.id for job in build_scheduler(rt).get_jobs()}
    assert {"analyze", "escalate", "dispatch"} <= jobs and "digest" not in jobs


def test_unknown_risk_terms_category_is_named(tmp_path):
    cfg_dir = _copy_config(tmp_path)
    _edit(cfg_dir / "hospital.yaml", "risk_terms:", "risk_terms:\n  violense: [打人]")
    with pytest.raises(ConfigError) as err:
        load_config(cfg_dir, env=SECRETS)
    assert "hospital.yaml: risk_terms: unknown risk category 'violense'" in str(err.value)


@pytest.mark.parametrize("old, new, where", [
    ("password: ${YUQING_SMTP_PASSWORD}", "password: 20261205", "email.password"),  # a number is a secret too
    ("key: ${YUQING_WECOM_CRISIS_KEY}", "key: ${YUQING_WECOM_CRISIS_KEY}\n    base_url: "
     "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa", "base_url"),
    ("password: ${YUQING_SMTP_PASSWORD}", "password: ${YUQING_SMTP_PASSWORD}\n  pasword: 693a91f6-secret-value",
     "pasword"),  # a misspelt field holding a secret
])
def test_secrets_pasted_anywhere_are_refused_and_never_echoed(tmp_path, old, new, where):
    cfg_dir = _copy_config(tmp_path)
    _edit(cfg_dir / "channels.yaml", old, new)
    with pytest.raises(ConfigError) as err:
        load_config(cfg_dir, env=SECRETS)
    text = str(err.value)
    assert where in text, text
    for secret in ("20261205", "693a91f6"):
        assert secret not in text, text


def test_missing_files_are_problems_not_config_ok(tmp_path):
    cfg_dir = _copy_config(tmp_path)
    (cfg_dir / "channels.yaml").unlink()
    (cfg_dir / "sources.yaml").unlink()
    with pytest.raises(ConfigError) as err:
        load_config(cfg_dir, env=SECRETS)
    assert any("sources.yaml: missing" in p for p in err.value.problems)
    assert any("channels.yaml: missing" in p for p in err.value.problems)


def test_the_example_config_is_flagged_when_no_config_is_named(tmp_path, monkeypatch):
    monkeypatch.delenv("YUQING_CONFIG_DIR", raising=False)
    assert load_config(env=SECRETS).example
    assert not load_config(REPO / "config", env=SECRETS).example
