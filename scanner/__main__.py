"""`python -m scanner` is the same as the `acrguard` console script."""

from scanner.cli.main import main

raise SystemExit(main())
