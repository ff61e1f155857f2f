# syntax=docker/dockerfile:1
# The Stagewatch worker image. Build from the repository root:
#   docker build -t stagewatch:0.1.0 .
# Run it (settings file mounted, secrets from the environment, env beats the file):
#   docker run --rm -p 127.0.0.1:6066:6066 -v "$PWD/my-settings.yaml:/etc/stagewatch/stagewatch.yaml:ro" \
#     -e STAGEWATCH_WORKER__INGEST_TOKEN=... stagewatch:0.1.0
# The default settings baked in are deploy/compose/stagewatch.yaml (the docker-compose stack).

# The compiled detectors (core/src) need a Rust toolchain to build; the image that runs has none.
FROM rust:1-slim-bookworm AS rust

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    RUSTUP_HOME=/usr/local/rustup CARGO_HOME=/usr/local/cargo PATH=/usr/local/cargo/bin:$PATH
COPY --from=rust /usr/local/rustup /usr/local/rustup
COPY --from=rust /usr/local/cargo /usr/local/cargo
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/stagewatch
WORKDIR /src
COPY pyproject.toml README.md Cargo.toml Cargo.lock ./
COPY core ./core
COPY detectors ./detectors
COPY monitor ./monitor
COPY streams ./streams
# Every Python dependency ships manylinux wheels for CPython 3.11; maturin builds our own (Rust) part.
# With the RocksDB bindings, so that `worker.store: rocksdb` works in this image too.
RUN /opt/stagewatch/bin/pip install ".[rocksdb]"
# The engine's per-event Python compiled by mypyc in the installed package (mypy kept out of the image).
RUN /opt/stagewatch/bin/pip install --target /opt/mypyc "mypy>=1.10" setuptools \
    && PYTHONPATH=/opt/mypyc /opt/stagewatch/bin/python core/mypyc_build.py --require \
       --root "$(/opt/stagewatch/bin/python -c 'import monitor, pathlib; print(pathlib.Path(monitor.__file__).parent.parent)')"

FROM python:3.11-slim
ENV PATH=/opt/stagewatch/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
# Fixed numeric uid/gid so Kubernetes can check runAsNonRoot; the data dir is the only writable path
# the worker needs (mount a volume there when the root filesystem is read-only).
RUN groupadd --system --gid 10001 stagewatch \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/stagewatch --shell /usr/sbin/nologin stagewatch \
    && install -d -o 10001 -g 10001 -m 0750 /var/lib/stagewatch
COPY --from=build /opt/stagewatch /opt/stagewatch
COPY deploy/compose/stagewatch.yaml /etc/stagewatch/stagewatch.yaml
USER 10001:10001
WORKDIR /var/lib/stagewatch
EXPOSE 6066
# /health answers 200 once the tables are recovered and no rebalance is running, 503 before.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=4 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('STAGEWATCH_WORKER__WEB_PORT', '6066'), timeout=4)"
ENTRYPOINT ["stagewatch"]
CMD ["worker", "--config", "/etc/stagewatch/stagewatch.yaml"]
