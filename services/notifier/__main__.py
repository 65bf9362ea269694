"""`python -m services.notifier`: partner notices out, e-mails delivered."""

from services.notifier.app import setup
from shared.service import run_service

if __name__ == "__main__":
    run_service("notifier", setup)
