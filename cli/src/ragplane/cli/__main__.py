"""python -m ragplane.cli"""

from ragplane.cli.main import main

main()
