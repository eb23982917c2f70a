"""The application built on the core and the stages: the CLI, the daemon and cron tick, the jobs they
run, the terminal reports, and the demo. Nothing below (core or stages) imports this package."""
