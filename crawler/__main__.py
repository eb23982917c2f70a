"""`python -m yuqing.crawler CONFIG_DIR [SOURCE_ID ...]`: one crawl run in its own process, for the daemon.

Exit codes: 0 the run completed (each source's success or failure is in its health and the
report), 2 the config is invalid or names an unknown source, 1 anything else went wrong.
The store is the config's database (YUQING_DATABASE_URL wins, as everywhere).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from datetime import datetime

from yuqing.clock import ManualClock, SystemClock
from yuqing.config import ConfigError, load_config

log = logging.getLogger("yuqing.crawler")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m yuqing.crawler", description=__doc__.splitlines()[0])
    parser.add_argument("config_dir", help="directory holding settings.yaml, hospital.yaml, sources.yaml, ...")
    parser.add_argument("source_ids", nargs="*", help="sources to crawl (default: every enabled source)")
    parser.add_argument("--now", help="fixed crawl time, ISO 8601 with offset (tests and the demo)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s [%(name)s] %(levelname)s: %(message)s")
    for handler in logging.root.handlers:
        handler.setLevel(logging.INFO)  # Scrapy sets its own loggers to DEBUG
    try:
        cfg = load_config(args.config_dir)
        for sid in args.source_ids:
            cfg.source(sid)
    except ConfigError as err:
        print(f"config problems:\n{err}", file=sys.stderr)
        return 2
    except KeyError as err:
        print(err.args[0], file=sys.stderr)
        return 2
    clock = ManualClock(datetime.fromisoformat(args.now)) if args.now else SystemClock()
    from yuqing.crawler.runner import crawl_sources

    report = crawl_sources(cfg, args.source_ids or None, clock=clock)
    if args.json:
        print(json.dumps(report.to_dict(), ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
