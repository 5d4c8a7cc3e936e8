"""Tests of one part at a time, each against its real database, NLU service or parser."""
