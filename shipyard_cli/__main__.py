from shipyard_cli.cli import run

run()
