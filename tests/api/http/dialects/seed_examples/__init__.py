"""The seeds' client examples, run as their users would run them (only URLs and keys set
in the environment)."""
