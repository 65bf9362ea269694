"""`python -m services.matcher`: store meldingen, match them, decide who is told."""

from services.matcher.app import setup
from shared.service import run_service

if __name__ == "__main__":
    run_service("matcher", setup)
