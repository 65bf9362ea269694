"""`python -m services.portal`: the web portal for partners on channel "portal"."""

from services.portal.app import setup
from shared.service import run_service

if __name__ == "__main__":
    run_service("portal", setup)
