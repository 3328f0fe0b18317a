"""The `asrkit` command line: one click group per stage family, thin commands over the library."""
