"""Input sets: reading, validating, importing and generating planning input folders."""
