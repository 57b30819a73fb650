"""Tasks: one module per subcommand, from input files to output files."""
