"""``python -m tousu_feedback [all|api|consumer|relay|migrate|downgrade]``."""

from tousu_shared.runner import main

from tousu_feedback.bootstrap import bootstrap

if __name__ == "__main__":
    main(bootstrap)
