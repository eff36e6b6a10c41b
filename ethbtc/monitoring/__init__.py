"""Watching the running bot: ``metrics`` is ``BotMetrics``, the Prometheus metrics the
monitoring docs list; ``metrics_server`` serves /metrics and /health from a thread, ``health``
keeps the loop-liveness state behind /health, ``healthcheck`` is the Docker probe
(``python -m ethbtc.monitoring.healthcheck``), ``logs`` sets up logging for every script
(--log-json, -v/-vv, secret redaction), ``levels`` turns the bands into buy/sell prices and bps
distances (metrics, console, HTML report), and ``alerting`` renders the Alertmanager config from
.env (``python -m ethbtc.monitoring.alerting render``). It imports only the foundations and
``data.timeframes``; the live executor and the reports import it, never the other way round.
"""
