# msgstatus: one image, three services (`msgstatus ingest | projector | api`), see compose.yaml.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY . .
# Wheels of the project and all its dependencies; the runtime stage installs only these.
RUN pip wheel --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MSGSTATUS_HOST=0.0.0.0
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-index --find-links /wheels msgstatus \
 && useradd --system --uid 10001 --no-create-home msgstatus
USER msgstatus
EXPOSE 8080 8081
ENTRYPOINT ["msgstatus"]
CMD ["--help"]
