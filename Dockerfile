# The gear image: /flywheel/v0 with manifest.json and the `run` entry point, our package and its pinned
# dependencies in /opt/venv. Build it with scripts/docker-build, which puts the wheels (ours, built on
# the host, and requirements.txt's, downloaded on the host) into wheels/ and builds with
# `--network none --build-arg PIP_NO_INDEX=1`, so no package index or Docker Hub is needed.
#
# Two stages: the venv is built in the first; the final image gets only /opt/venv (no wheels, no pip).
FROM python:3.11-slim-bookworm AS venv

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

COPY requirements.txt /tmp/requirements.txt
COPY wheels/ /tmp/wheels/

# 0: dependencies may come from the configured index when wheels/ lacks them; 1: wheels/ only.
ARG PIP_NO_INDEX=0

RUN python3 -m venv /opt/venv \
 && PIP_NO_INDEX=${PIP_NO_INDEX} /opt/venv/bin/python -m pip install --no-cache-dir \
        --disable-pip-version-check --only-binary=:all: --find-links /tmp/wheels \
        --requirement /tmp/requirements.txt \
 && /opt/venv/bin/python -m pip install --no-cache-dir --disable-pip-version-check --no-index \
        --no-deps /tmp/wheels/fw_gear_deid-*.whl \
 && /opt/venv/bin/python -m pip uninstall --yes --disable-pip-version-check pip setuptools \
 && /opt/venv/bin/python -c "import fw_gear_deid, flywheel, flywheel_gear_toolkit"


FROM python:3.11-slim-bookworm

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# Same values as manifest.json "environment" (the engine gives the gear only those).
ENV FLYWHEEL=/flywheel/v0 \
    PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONUNBUFFERED=1 \
    LANG=C.UTF-8

# The official python image ships pip and setuptools with its Python; the gear needs neither
# (the Debian-built stand-in has none): no build tools in the image.
RUN for base_python in /usr/local/bin/python3 /usr/bin/python3; do \
        if [ -x "$base_python" ] && "$base_python" -m pip --version >/dev/null 2>&1; then \
            "$base_python" -m pip uninstall --yes --disable-pip-version-check pip setuptools wheel; \
        fi; \
    done

COPY --from=venv /opt/venv /opt/venv

WORKDIR /flywheel/v0
COPY manifest.json run.py /flywheel/v0/
RUN chmod 0755 /flywheel/v0/run.py && ln -s run.py /flywheel/v0/run

ENTRYPOINT []
CMD ["/flywheel/v0/run"]
