"""Command line tools: thin layers over the library (see corokey.cli.main)."""
