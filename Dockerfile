# syntax=docker/dockerfile:1
# Build: a static, CGO-free binary (the same flags as scripts/build-static).
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X main.version=${VERSION}" \
      -o /out/scheduler ./cmd/scheduler

# Runtime: CA certificates for the HTTPS SAE endpoint, no shell, numeric non-root UID.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/scheduler /usr/local/bin/scheduler
COPY schedules.example.yaml /etc/scheduler/schedules.yaml
USER 65532:65532
WORKDIR /var/lib/scheduler
# The run journal (SQLite) lives here; mount a volume to keep history across restarts.
VOLUME ["/var/lib/scheduler"]
EXPOSE 9750
# Give the container a stop grace period >= -shutdown-timeout (default 5m) so an
# in-flight change order is watched to its end.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s CMD ["scheduler", "healthcheck"]
ENTRYPOINT ["scheduler"]
# The journal defaults to ./scheduler.db, i.e. inside the state volume (WORKDIR).
CMD ["run", "-config", "/etc/scheduler/schedules.yaml"]
