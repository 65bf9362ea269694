"""`python -m services.retention`: the time-driven rules, swept on a schedule."""

from services.retention.app import setup
from shared.service import run_service

if __name__ == "__main__":
    run_service("retention", setup)
