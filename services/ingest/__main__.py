"""`python -m services.ingest`: consume vi.inbound, answer or forward every message."""

from services.ingest.app import setup
from shared.service import run_service

if __name__ == "__main__":
    run_service("ingest", setup)
