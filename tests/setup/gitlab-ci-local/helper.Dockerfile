# The container gitlab-ci-local starts beside each job to hand the project to the job's user and to copy artifacts
# out (a shell, chown, bash and rsync): a local stand-in for its own docker.io/firecow/gitlab-ci-local-util, which a
# machine without a registry cannot pull. tests/container/test_gitlab_template.py builds it on a Debian Python base.
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends bash rsync >/dev/null \
 && rm -rf /var/lib/apt/lists/*
