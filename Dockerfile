# IndexGuard: a screening mirror of the Python package index.
#   docker build -t indexguard .
#   docker run -p 8080:8080 -v indexguard-data:/data indexguard
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN useradd --system --create-home --home-dir /home/indexguard --uid 10001 indexguard \
    && mkdir /data && chown indexguard /data

WORKDIR /src
COPY pyproject.toml README.md ./
COPY mirror ./mirror
COPY detectors ./detectors
COPY alembic ./alembic
RUN pip install . && rm -rf /src

USER indexguard
WORKDIR /home/indexguard
VOLUME ["/data"]
EXPOSE 8080

# Settings: mount a TOML file and set INDEXGUARD_CONFIG, or rely on the defaults.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4).status == 200 else 1)"

CMD ["indexguard", "serve", "--host", "0.0.0.0", "--port", "8080", "--storage", "/data"]
