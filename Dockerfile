FROM python:3.11-slim

WORKDIR /app
COPY pyproject.toml README.md ./
COPY loopline loopline
COPY workflows workflows
COPY activities activities
COPY api api
COPY workers workers
COPY environments environments
RUN pip install --no-cache-dir '.[s3,otel]'

RUN useradd --create-home loopline && mkdir -p /data/blobs && chown loopline /data/blobs
USER loopline
EXPOSE 8000
CMD ["loopline", "api", "--host", "0.0.0.0", "--port", "8000"]
