"""``python -m tousu_analytics.cli rebuild|generate|bench|detect|report`` (entrypoints/cli.py)."""

from tousu_analytics.entrypoints.cli import main

if __name__ == "__main__":
    main()
