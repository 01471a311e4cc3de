# Keygate as a container: a static binary on distroless, as a non-root user.
#
#   docker build -t keygate .
#   docker run -d --name keygate -p 8080:8080 -v keygate-data:/data \
#     -e KEYGATE_ISSUER=https://id.example.com \
#     -e KEYGATE_KEY_ENCRYPTION_KEY="$(cat kek)" keygate
#
# More (configuration file, secrets, upgrades): docs/deploy.md.
# deploy/deploy_test.go builds the same binary with the same flags and runs it
# as this user with only its data directory writable.

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# The SQLite driver is pure Go: a static binary, no libc needed.
RUN CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /keygate . \
 && mkdir /data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /keygate /keygate
# A new named volume copies this directory's owner (65532, "nonroot").
COPY --from=build --chown=65532:65532 /data /data
USER 65532:65532
WORKDIR /data
VOLUME /data
# Every setting is an environment variable (README "Configuration"); a
# configuration file can be mounted and named with KEYGATE_CONFIG.
ENV KEYGATE_LISTEN=:8080 \
    KEYGATE_DATABASE_URL=/data/keygate.db \
    KEYGATE_LOG_FORMAT=json
EXPOSE 8080
ENTRYPOINT ["/keygate"]
