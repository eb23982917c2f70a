"""The wheel, as a hospital's IT staff would install it: no checkout beside it, nothing generic in
site-packages, shipped data and the example config read from the package."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from .conftest import REPO, SECRETS


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import shutil

    out = tmp_path_factory.mktemp("wheel")
    # Built from a copy without build/: setuptools reuses a checkout's build/lib, so a migration renamed
    # since an earlier build would ride along in the wheel (two Alembic heads) and the test would be
    # testing that leftover rather than this tree.
    source = tmp_path_factory.mktemp("source") / "yuqing"
    shutil.copytree(REPO, source, symlinks=True, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "*.egg-info", "__pycache__", ".*_cache", "*.db", "*.db-*", "digests", "run"))
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out), str(source)],
                           capture_output=True, text=True, timeout=600)
    if built.returncode != 0:
        pytest.fail(f"building the wheel failed:\n{built.stderr[-3000:]}")
    return next(out.glob("yuqing-*.whl"))


def test_the_wheel_installs_only_yuqing_with_its_data(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names} == {"yuqing", f"{wheel.name.split('-py3')[0]}.dist-info"}
    for shipped in ("yuqing/data/risk_model.npz", "yuqing/data/sentiment_model.npz", "yuqing/data/risk_lexicon.yaml",
                    "yuqing/data/medical_userdict.txt", "yuqing/data/zh_t2s.txt", "yuqing/example_config/hospital.yaml",
                    "yuqing/alerts/templates/alert.html.j2", "yuqing/analysis/judge.py", "yuqing/crawler/spiders/feed.py",
                    "yuqing/migrations/versions/0004_stage_locks.py"):
        assert shipped in names, shipped
    assert not any(n.endswith(".db") or "hospital-" in n for n in names)  # no database or retrained model


def test_a_fresh_venv_runs_init_check_config_and_a_short_pipeline(wheel: Path, tmp_path: Path) -> None:
    """Installed in a new virtual environment (its dependencies borrowed from the project's, read-only,
    so the test needs no network), run from a directory that is not the checkout."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    (Path(site) / "borrowed_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    installed = subprocess.run([str(py), "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", str(wheel)],
                               capture_output=True, text=True, timeout=300)
    assert installed.returncode == 0, installed.stderr[-2000:]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("YUQING_", "PYTHON"))}
    env.update(SECRETS)
    work = tmp_path / "elsewhere"
    work.mkdir()

    def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(venv / "bin" / "yuqing"), *args], cwd=work, env=env, input=stdin,
                              capture_output=True, text=True, timeout=300)

    where = subprocess.run([str(py), "-c", "import yuqing, importlib.util as u; print(yuqing.__file__); "
                            "print(u.find_spec('analysis'), u.find_spec('crawler'), u.find_spec('alerts'))"],
                           cwd=work, env=env, capture_output=True, text=True, check=True).stdout.splitlines()
    assert where[0].startswith(site) and where[1] == "None None None"  # ours, and no generic top-level names
    cfg = work / "etc-yuqing"
    made = run("init", str(cfg), "--data-dir", str(work / "var"))
    assert made.returncode == 0, made.stderr
    assert {p.name for p in cfg.glob("*.yaml")} == {"hospital.yaml", "sources.yaml", "plan.yaml", "channels.yaml",
                                                    "settings.yaml"}
    assert run("init", str(cfg)).returncode == 1  # never over an existing config
    env["YUQING_CONFIG_DIR"] = str(cfg)
    checked = run("check-config")
    assert checked.returncode == 0, checked.stderr
    assert "config OK" in checked.stdout and str(work / "var") in checked.stdout
    assert run("migrate").returncode == 0
    judged = run("risk", stdin="患者家属持刀砍伤医生 嫌疑人已被刑拘\n医院新门诊楼正式启用\n")
    assert judged.returncode == 0, judged.stderr
    first, second = (json.loads(line) for line in judged.stdout.splitlines())
    assert first["crisis"] and "violence" in first["categories"] and not second["negative"]
    seed = ("from datetime import datetime, timezone\n"
            "from yuqing.config import load_config\nfrom yuqing.store import Store\n"
            "from yuqing.models import Mention, SourceState\n"
            "cfg = load_config()\nstore = Store(cfg.database_url)\n"
            "with store.session() as s:\n"
            "    s.add(SourceState(id='forum', kind='web', name='论坛', url='https://bbs.example', tier=4))\n"
            "    s.flush()\n"
            "    s.add(Mention(url='https://bbs.example/1', source_id='forum', title='江城一院护士殴打患儿视频曝光',"
            " text='', fetched_at=datetime.now(timezone.utc), content_hash='x'))\n")
    subprocess.run([str(py), "-c", seed], cwd=work, env=env, check=True, timeout=120)
    analysed = run("analyze")
    assert analysed.returncode == 0, analysed.stderr
    assert "1 crisis" in analysed.stdout and "事件 1 已开启" in analysed.stdout
    assert (work / "var" / "yuqing.db").exists()  # the database is where init said, not in site-packages
