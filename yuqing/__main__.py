"""Allow `python -m yuqing`."""

from yuqing.app.cli import main

main()
