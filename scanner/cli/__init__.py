"""The `acrguard` command line: argument parsing and output on top of every other layer; nothing imports it."""
