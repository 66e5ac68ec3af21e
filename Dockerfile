# The scan job's image (Container Apps job or `--runner docker`). Not built in the development
# environment (no Docker engine there): treat it as untested until CI builds it.
FROM python:3.11-slim

# bubblewrap and libseccomp let `acrguard job --runner bubblewrap` nest a sandbox where the platform
# allows user namespaces; the Container Apps job itself runs `--runner none` (the container is the boundary).
RUN apt-get update \
    && apt-get install -y --no-install-recommends bubblewrap libseccomp2 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/acrguard
COPY pyproject.toml README.md function_app.py ./
COPY scanner ./scanner
# The worker applies the disable rules and gates of policies/ (its working directory's, by default), as the
# function app does with the copy deployed beside function_app.py.
COPY policies ./policies
RUN pip install --no-cache-dir . \
    && useradd --system --uid 10001 --home-dir /home/acrguard --create-home acrguard

USER 10001
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
# One scan per execution (the Container Apps runner passes the reference as args). For the queue-driven
# deployment (infra/modules/scan-job.bicep), a Container Apps job scaled on the scan queue (KEDA azure-queue)
# overrides the command with ["acrguard", "worker", "--runner", "none"] and sets the ACRGUARD_* settings.
ENTRYPOINT ["acrguard", "job"]
