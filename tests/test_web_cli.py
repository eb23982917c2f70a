"""`yuqing serve` and `yuqing users` as IT staff run them: real processes on a real database."""

from __future__ import annotations

import signal
import subprocess
import time
import urllib.request
from pathlib import Path

from .test_cli_commands import YUQING, _env, _yuqing, seeded  # noqa: F401  (seeded is a fixture)
from .web_support import WEB_SECRET, free_port


def test_users_set_password_list_and_disable(seeded: Path) -> None:
    made = _yuqing(seeded, "users", "set-password", "张敏", "--role", "duty", "--password-stdin",
                   stdin="a-long-enough-pass\n")
    assert made.returncode == 0 and "duty-officer (张敏), role duty" in made.stdout
    assert "a-long-enough-pass" not in made.stdout + made.stderr
    short = _yuqing(seeded, "users", "set-password", "duty-officer", "--password-stdin", stdin="short\n")
    assert short.returncode == 1 and "至少" in short.stderr
    stranger = _yuqing(seeded, "users", "set-password", "王五", "--password-stdin", stdin="a-long-enough-pass\n")
    assert stranger.returncode == 1 and "没有唯一的收件人" in stranger.stderr
    listed = _yuqing(seeded, "users", "list")
    assert listed.returncode == 0 and "duty-officer" in listed.stdout and "duty" in listed.stdout
    assert "$argon2" not in listed.stdout
    off = _yuqing(seeded, "users", "disable", "duty-officer")
    assert off.returncode == 0 and "disabled" in _yuqing(seeded, "users", "list").stdout


def test_serve_answers_and_stops_on_sigterm(seeded: Path) -> None:
    port = free_port()
    env = {**_env(seeded), "YUQING_WEB_SECRET": WEB_SECRET}
    proc = subprocess.Popen([*YUQING, "serve", "--port", str(port)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as resp:
                    assert resp.status == 200 and resp.read() == b"ok"
                    assert "default-src 'none'" in resp.headers["content-security-policy"]
                    break
            except OSError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline, "serve did not come up"
                time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    err = proc.stderr.read() if proc.stderr else ""
    assert WEB_SECRET not in err


def test_serve_refuses_to_start_without_a_secret(seeded: Path) -> None:
    refused = _yuqing(seeded, "serve", "--port", str(free_port()))
    assert refused.returncode == 1 and "YUQING_WEB_SECRET" in refused.stderr


def test_check_config_wants_the_secret_once_there_is_a_public_address(tmp_path: Path) -> None:
    import yaml

    from .conftest import write_config_dir

    config_dir = write_config_dir(tmp_path, web={"public_url": "https://yuqing.hospital.example/", "port": 8601})
    env = _env(config_dir)
    missing = subprocess.run([*YUQING, "check-config"], env=env, capture_output=True, text=True, timeout=120)
    assert missing.returncode == 1
    assert "settings.yaml: web.public_url is set, but set YUQING_WEB_SECRET" in missing.stderr
    ok = subprocess.run([*YUQING, "check-config"], env={**env, "YUQING_WEB_SECRET": WEB_SECRET}, capture_output=True,
                        text=True, timeout=120)
    assert ok.returncode == 0 and "console: https://yuqing.hospital.example (listens on 127.0.0.1:8601)" in ok.stdout
    assert WEB_SECRET not in ok.stdout + ok.stderr
    settings = yaml.safe_load((config_dir / "settings.yaml").read_text(encoding="utf-8"))
    settings["web"]["public_url"] = "javascript:alert(1)"
    (config_dir / "settings.yaml").write_text(yaml.safe_dump(settings), encoding="utf-8")
    bad = subprocess.run([*YUQING, "check-config"], env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and "web.public_url" in bad.stderr


def test_incident_note_response_link_and_false_alarm_from_the_cli(seeded: Path) -> None:
    noted = _yuqing(seeded, "incidents", "note", "1", "--by", "duty-officer", "--note", "已联系急诊科主任")
    assert noted.returncode == 0 and "已为事件 1 添加备注，记录人：张敏" in noted.stdout
    bad = _yuqing(seeded, "incidents", "respond", "1", "--by", "张敏", "--url", "javascript:alert(1)")
    assert bad.returncode == 1 and "http" in bad.stderr
    ok = _yuqing(seeded, "incidents", "respond", "1", "--by", "张敏", "--url", "https://weibo.example/s/1")
    assert ok.returncode == 0
    closed = _yuqing(seeded, "incidents", "false-alarm", "1", "--by", "刘洋", "--note", "另一家医院")
    assert closed.returncode == 0 and "误报" in closed.stdout
    shown = _yuqing(seeded, "incidents", "show", "1").stdout
    assert "note" in shown and "已联系急诊科主任" in shown and "false_alarm" in shown and "https://weibo.example/s/1" in shown
    assert "false alarm" in _yuqing(seeded, "incidents", "list", "--all").stdout
