# syntax=docker/dockerfile:1
# ETH/BTC toolkit image. Default command: the live executor (MODE=dry unless the environment says
# otherwise); any other toolkit script by name:
#   docker build -t ethbtc .
#   docker run --rm ethbtc --help                       # live_executor.py --help
#   docker run --rm ethbtc backtest --help              # ethbtc_accum_bot.py backtest --help
#   docker run --rm -v "$PWD/data:/app/data" ethbtc download_vision.py --symbol ETHBTC ...
# No secrets are baked in: keys come from the environment at run time (compose: env_file .env).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONPATH=/app \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    NUMBA_CACHE_DIR=/tmp/numba_cache \
    ETHBTC_CONTAINER=1 \
    MODE=dry \
    STATE_FILE=/data/state.json \
    METRICS_PORT=9109 \
    METRICS_ADDR=0.0.0.0

# Unprivileged user; /data (state, trade ledger) is the only place the bot writes besides /tmp.
RUN groupadd --gid 1000 bot \
    && useradd --uid 1000 --gid bot --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin bot \
    && mkdir -p /data \
    && chown bot:bot /data

WORKDIR /app

# Dependencies first: this layer is rebuilt only when requirements.txt changes.
COPY requirements.txt ./
RUN pip install --no-cache-dir -r requirements.txt

# Code last (see .dockerignore): a code change rebuilds only the layers below.
COPY ethbtc/ ./ethbtc/
COPY configs/ ./configs/
COPY *.py ./

# Smoke test at build time: a broken image fails here, not in production.
RUN NUMBA_CACHE_DIR=/tmp/build_numba python -m ethbtc.entrypoint selftest \
    && rm -rf /tmp/build_numba

USER 1000:1000
VOLUME ["/data"]
EXPOSE 9109
HEALTHCHECK --interval=60s --timeout=10s --start-period=180s --retries=3 \
    CMD ["python", "-m", "ethbtc.monitoring.healthcheck"]
ENTRYPOINT ["python", "-m", "ethbtc.entrypoint"]
CMD ["--params", "configs/prod_live.json"]
