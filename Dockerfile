# syntax=docker/dockerfile:1
# Production image: gunicorn serving practice.wsgi, static files via WhiteNoise.
# The same image runs the Celery worker and beat (see docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

# Fixed numeric ids so orchestrators can verify runAsNonRoot.
RUN groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid app --home-dir /app --no-create-home --shell /usr/sbin/nologin app

WORKDIR /app

# 1) Runtime dependencies only (no `local`/`dev` extras), in their own layer so
#    code changes do not reinstall them. README.m[d] copies README.md if present
#    (pyproject names it as the readme) without failing the build if it is not.
COPY pyproject.toml README.m[d] ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt \
 && rm /tmp/requirements.txt

# 2) The project itself.
COPY manage.py ./
COPY practice ./practice
COPY scheduling ./scheduling
COPY alliance ./alliance
COPY templates ./templates
COPY static ./static
RUN pip install --no-deps . \
 && rm -rf build ./*.egg-info

# 3) Static files at build time. These values exist only for this RUN step (they
#    are not baked into the image's environment) and need no running server:
#    collectstatic never opens a database or Redis connection.
RUN SECRET_KEY=build-only-collectstatic-not-secret \
    DATABASE_URL=sqlite:////tmp/collectstatic.sqlite3 \
    REDIS_URL=redis://localhost:6379/0 \
    DEBUG=false \
    python manage.py collectstatic --noinput \
 && rm -f /tmp/collectstatic.sqlite3

# Code and collected static stay root-owned (read-only for the app user).
USER 10001:10001

EXPOSE 8000

CMD ["gunicorn", "practice.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-"]
