"""Example clips for the app's gallery, and the script that makes them (python -m examples.make_examples)."""
