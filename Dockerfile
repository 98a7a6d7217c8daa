# Build stage: a static, cgo-free binary (the SQLite driver is pure Go).
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=0.0.0
ARG REVISION=unknown
RUN CGO_ENABLED=0 go build -trimpath \
    -ldflags "-s -w -X github.com/prometheus/common/version.Version=${VERSION} -X github.com/prometheus/common/version.Revision=${REVISION}" \
    -o /out/vantage ./cmd/vantage

# Runtime: Debian with its Chromium for browser checks, run as the non-root
# user vantage (uid 10001; the Kubernetes manifests rely on it). Chromium's
# sandbox stays on for a non-root user (--no-sandbox is used only as root);
# where the runtime gives no user namespaces, pass --browser.no-sandbox and
# let the container be the boundary; see docs/deployment.md.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends chromium ca-certificates fonts-dejavu-core tini \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --create-home --home-dir /var/lib/vantage --uid 10001 vantage
COPY --from=build /out/vantage /usr/bin/vantage
COPY config.example.yaml /etc/vantage/vantage.yaml
USER vantage
WORKDIR /var/lib/vantage
EXPOSE 9947
VOLUME ["/var/lib/vantage"]
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/bin/vantage"]
CMD ["run", "--config.file=/etc/vantage/vantage.yaml", "--storage.path=/var/lib/vantage/data"]
