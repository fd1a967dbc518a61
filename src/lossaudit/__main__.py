"""``python -m lossaudit``: the same command line as the ``lossaudit`` script."""

from lossaudit.cli import main

main()
