# hlrd daemon image. Mount your own config at /etc/hlrd/hlrd.toml (the baked default
# points at a simulator on 127.0.0.1:2775; run hlrd-sim beside it or change upstream).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY hlrd ./hlrd
COPY simulator ./simulator
RUN pip install --no-cache-dir . && useradd --system --no-create-home hlrd
COPY config/hlrd.toml /etc/hlrd/hlrd.toml
COPY config/scenarios /etc/hlrd/scenarios
RUN sed -i 's/^host = "127.0.0.1"   *$/host = "0.0.0.0"/' /etc/hlrd/hlrd.toml
USER hlrd
EXPOSE 8080
STOPSIGNAL SIGTERM
CMD ["hlrd", "run", "--config", "/etc/hlrd/hlrd.toml"]
