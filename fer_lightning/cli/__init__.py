"""Entry points: parse the command line, call the library, print; one path for errors."""
