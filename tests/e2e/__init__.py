"""End-to-end tests: the assembled assistant against fake servers, a browser or a terminal."""
