"""``python -m tousu_intake [all|api|consumer|relay|migrate|downgrade]``."""

from tousu_shared.runner import main

from tousu_intake.bootstrap import bootstrap

if __name__ == "__main__":
    main(bootstrap)
