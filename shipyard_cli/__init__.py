"""`shipyard`, the command-line client of the Shipyard API: standard library only, so it
runs anywhere Python 3.11 does. Run it as `python -m shipyard_cli` or `bin/shipyard`."""

__version__ = "0.1.0"
