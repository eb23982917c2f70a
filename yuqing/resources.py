"""Where shipped files are, in a checkout and in an installed wheel alike.

In the repository the stage packages (crawler/, analysis/, alerts/), data/ and config/ sit at the top,
as the layout names them, and yuqing/ links to them; a wheel carries them inside the yuqing package
(yuqing.crawler, yuqing.data, yuqing.example_config), so no generic top-level name is installed.
"""

from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
# Shipped files through importlib.resources: the package's own data wherever it is installed. numpy,
# jieba and yaml open them by path, so the package must be installed unzipped, as pip does.
DATA = Path(str(files("yuqing") / "data"))  # the shipped models, lexicons and dictionaries
EXAMPLE_CONFIG = Path(str(files("yuqing") / "example_config"))  # the commented example (`yuqing init` copies it)

# A checkout (tests, scripts, benches, ../shared beside it) or an installed wheel.
_REPO = PACKAGE_DIR.parent
CHECKOUT: Path | None = _REPO if (_REPO / "pyproject.toml").is_file() and (_REPO / "analysis").is_dir() else None


def default_data_dir() -> Path:
    """Where the database and what is made from it go when settings.yaml names no data_dir: data/ of a
    checkout, else $XDG_DATA_HOME/yuqing (~/.local/share/yuqing), never inside site-packages."""
    if CHECKOUT is not None:
        return CHECKOUT / "data"
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "yuqing"
