"""``python -m tousu_sla [all|api|consumer|relay|scheduler|migrate|downgrade]``."""

from tousu_shared.runner import main

from tousu_sla.bootstrap import bootstrap

if __name__ == "__main__":
    main(bootstrap)
