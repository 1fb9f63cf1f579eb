"""``python -m tousu_analytics [all|api|consumer|relay|migrate|downgrade]``."""

from tousu_shared.runner import main

from tousu_analytics.bootstrap import bootstrap

if __name__ == "__main__":
    main(bootstrap)
