"""``kubectl armor``: a kubectl plugin that asks the live cluster about destinations, alerts and their incidents."""
