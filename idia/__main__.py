"""`python -m idia`: the same command line as `idia`."""

from idia.compliance.cli import main

main()
