"""``python -m arbx_dagster.cli`` is the ``arbx`` command."""

from arbx_dagster.cli import main

main()
