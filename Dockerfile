# imserver: one node, serving on 0.0.0.0:8000.
#
#   docker build -t imserver .
#   docker run -p 8000:8000 -v imserver-data:/data imserver
#   docker run --rm -it -v imserver-data:/data imserver operator create --handle root --role admin
#   docker run --rm -v imserver-data:/data imserver audit verify
#
# With no IMSERVER_DATABASE_URL it runs on the embedded SQLite file under /data
# (keep /data on a volume); set IMSERVER_DATABASE_URL for PostgreSQL. See
# docs/operations.md for the settings that matter.

# -- build: a wheel of imserver and of every dependency ------------------------------
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md constraints.txt ./
COPY src ./src
# constraints.txt: the versions the test suite passed with, not whatever is newest today.
RUN pip wheel --no-cache-dir --wheel-dir /wheels -c constraints.txt .

# -- run: no compilers, no sources, not root ------------------------------------------
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    IMSERVER_DATA_DIR=/data
# A fixed uid so a mounted volume's ownership is predictable.
RUN useradd --system --uid 10001 --user-group --home-dir /app --shell /usr/sbin/nologin imserver \
 && mkdir -p /app /data \
 && chown imserver:imserver /data
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels imserver \
 && rm -rf /wheels
WORKDIR /app
USER imserver
VOLUME ["/data"]
EXPOSE 8000
# Liveness: /livez answers while the process serves, whatever the database or
# Redis do, so an orchestrator that restarts unhealthy containers never restarts
# a node for an outage a restart cannot fix. Route traffic on /readyz instead
# (docker-compose.yml does). python, not curl: the slim image has no curl;
# urlopen raises on a non-2xx answer, which exits non-zero.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/livez' % os.environ.get('IMSERVER_PORT', '8000'), timeout=4)"]
ENTRYPOINT ["imserver"]
CMD ["serve", "--host", "0.0.0.0"]
