"""Deadline rules, training sessions and reminder jobs (filled in by the reminders issue)."""
