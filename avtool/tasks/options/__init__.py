"""The options of each task, one module per subcommand, importing nothing heavy: the CLI reads
their defaults when it starts, before any task (and numpy, torch) is imported."""
