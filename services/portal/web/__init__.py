"""The portal's web pages (Starlette, Jinja2 templates rendered on the server)."""
