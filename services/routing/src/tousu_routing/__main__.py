"""``python -m tousu_routing [all|api|consumer|relay|migrate|downgrade]``."""

from tousu_shared.runner import main

from tousu_routing.bootstrap import bootstrap

if __name__ == "__main__":
    main(bootstrap)
