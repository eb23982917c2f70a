"""The layout the design names: a small shared core that never imports the stages or the application,
and stages that never import the application built on top of them."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from .conftest import REPO

CORE = ["yuqing/config.py", "yuqing/store.py", "yuqing/models.py", "yuqing/clock.py", "yuqing/locks.py",
        "yuqing/resources.py", "yuqing/risk_categories.py", "yuqing/vocabulary.py", "yuqing/channel_config.py"]
STAGES = ["crawler", "analysis", "alerts"]
APPLICATION = ("yuqing.app",)  # the CLI, the daemon and tick, the jobs, the reports and the demo


def _imports(path: Path) -> set[str]:
    """Every module a file imports, at the top or inside a function."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
    return out


def _bad(imports: set[str], forbidden: tuple[str, ...]) -> list[str]:
    return sorted(m for m in imports if any(m == f or m.startswith(f + ".") for f in forbidden))


@pytest.mark.parametrize("name", CORE)
def test_the_core_imports_neither_stages_nor_application(name: str) -> None:
    forbidden = (*APPLICATION, *(f"yuqing.{s}" for s in STAGES), *STAGES)
    assert not _bad(_imports(REPO / name), forbidden)


@pytest.mark.parametrize("stage", STAGES)
def test_a_stage_never_imports_the_application(stage: str) -> None:
    offenders = {str(p.relative_to(REPO)): bad for p in sorted((REPO / stage).rglob("*.py"))
                 if (bad := _bad(_imports(p), APPLICATION))}
    assert not offenders, offenders


def test_the_checker_sees_imports_inside_functions(tmp_path: Path) -> None:
    sample = tmp_path / "m.py"
    sample.write_text("def f():\n    from yuqing.app.jobs import analyze\n", encoding="utf-8")
    assert _bad(_imports(sample), APPLICATION) == ["yuqing.app.jobs"]


def test_the_application_lives_in_its_own_package() -> None:
    """The core folder holds no application module: cli, daemon, jobs, reports and demo are yuqing.app."""
    assert not [name for name in ("cli.py", "daemon.py", "jobs.py", "reports.py", "demo") if (REPO / "yuqing" / name).exists()]
    assert all((REPO / "yuqing" / "app" / name).exists() for name in ("cli.py", "daemon.py", "jobs.py", "reports.py", "demo"))
