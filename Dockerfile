# hlrd daemon image; the same image runs the simulator (`hlrd-sim`), see deploy/compose.yaml.
#   docker build -t hlrd .
#   docker run -p 8080:8080 -p 2776:2776 -e HLRD_TOKENS=... -e HLRD_UPSTREAM_PASSWORD=... \
#     -e HLRD_CC_PASSWORD=... -v $PWD/my.toml:/etc/hlrd/hlrd.toml:ro hlrd
# The baked config (config/container.toml) listens on 0.0.0.0 and binds to the upstream
# host "simulator"; mount your own at /etc/hlrd/hlrd.toml for a real provider.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY hlrd ./hlrd
COPY simulator ./simulator
RUN pip install --no-cache-dir . \
 && groupadd --system --gid 10001 hlrd \
 && useradd --system --uid 10001 --gid hlrd --home-dir /var/lib/hlrd --no-create-home hlrd \
 && install -d -o hlrd -g hlrd -m 0750 /var/lib/hlrd

COPY config/container.toml /etc/hlrd/hlrd.toml
COPY config/scenarios /etc/hlrd/scenarios

# hlrd's state directory (kept across container upgrades).
VOLUME ["/var/lib/hlrd"]
WORKDIR /var/lib/hlrd
# A numeric user, so runtimes that require a non-root user can verify it.
USER 10001:10001

# 8080: HTTP API, /healthz, /readyz, /metrics. 2776: SMPP front end for platforms.
EXPOSE 8080 2776

# Liveness, not readiness: /healthz answers while the process serves HTTP; /readyz is
# 503 whenever no upstream bind is up, and restarting hlrd does not bring a provider
# back (it drops the platforms' binds and their pending receipts). Readiness belongs to
# the load balancer (/readyz) and to the HlrdAllProvidersDown alert. The slim image has
# no curl: Python's urllib fails (exit 1) on a refused connection, a timeout or a non-2xx.
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=3)"]

STOPSIGNAL SIGTERM
CMD ["hlrd", "run", "--config", "/etc/hlrd/hlrd.toml"]
