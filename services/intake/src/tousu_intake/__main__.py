"""``python -m tousu_intake [all|<role>|migrate|downgrade|dlq-replay]``.

Roles: api, consumer, relay, rekey (key rotation), retention (anonymises old complaints).
"""

from tousu_shared.runner import main

from tousu_intake.bootstrap import bootstrap

if __name__ == "__main__":
    main(bootstrap)
