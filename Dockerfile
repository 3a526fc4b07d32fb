# One image for every part of a scaled-out study: `ablate` workers (the entrypoint) and,
# with the entrypoint set to `mlflow`, the tracking server (docker-compose.yml does both).
# The base's torch 2.5 / torchvision 0.20 (CUDA 12.4, Python 3.11) satisfy pyproject.toml,
# so pip keeps them; build with --build-arg BASE=... for another CUDA.
ARG BASE=pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime
FROM ${BASE}

WORKDIR /opt/ablate
COPY pyproject.toml README.md ./
COPY ablate ./ablate
# the README's install (`make`): the package, editable, from this checkout
RUN pip install --no-cache-dir -e .
COPY studies ./studies

ENTRYPOINT ["ablate"]
CMD ["--help"]
