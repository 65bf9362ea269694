# One image for every Verwijsindex process: the five services
# (`python -m services.<name>`) and the operator CLI (`verwijsindex ...`).
FROM python:3.11.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

# Unprivileged runtime user; it can write only /app/var (the .eml mail fallback).
RUN groupadd --system --gid 10001 verwijsindex \
 && useradd --system --uid 10001 --gid verwijsindex --home-dir /app \
        --shell /usr/sbin/nologin verwijsindex

WORKDIR /app

# Dependencies and source. Kept as one install step: the package is small and the
# wheels of its dependencies (asyncpg, uvloop) are prebuilt for this platform.
COPY pyproject.toml ./
COPY shared ./shared
COPY services ./services
COPY cli ./cli
COPY region ./region
RUN pip install --no-cache-dir . \
 && rm -rf build ./*.egg-info \
 && mkdir -p /app/var/mail \
 && chown -R verwijsindex:verwijsindex /app/var

USER verwijsindex

# Used only when VI_SMTP_URL is unset: e-mails are written as .eml files here.
ENV VI_MAIL_DIR=/app/var/mail \
    VI_HTTP_PORT=8080

EXPOSE 8080

# Services are started by overriding the command, e.g. `python -m services.ingest`.
CMD ["verwijsindex", "--help"]
